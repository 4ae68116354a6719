"""Vocabulary: round trips over any Unicode, the printable set, compact ids, unknown-character policies."""
import string

import pytest
import torch

import charrnn.vocab as vocab_module
from charrnn.vocab import UnknownCharacterError, Vocab

FRENCH = "Où est la forêt ? À côté de l'église, naïve Zoë mange des crêpes.\n"
CHINESE = "床前明月光，疑是地上霜。举头望明月，低头思故乡。\n"


@pytest.mark.parametrize("text", [FRENCH, CHINESE, FRENCH + CHINESE + "emoji 🙂 and 𝄞\ttab\r\n"])
def test_corpus_vocab_round_trips_any_unicode_text(text):
    v = Vocab.from_text(text)
    ids = v.encode(text)
    assert v.decode(ids) == text
    assert len(ids) == len(text)


def test_corpus_vocab_is_the_sorted_unique_characters():
    v = Vocab.from_text("banana split")
    assert v.chars == sorted(set("banana split"))
    assert v.encode("ab").tolist() == [v.chars.index("a"), v.chars.index("b")]


def test_printable_vocab_is_string_printable_in_order():
    v = Vocab.printable()
    assert v.chars == list(string.printable)
    assert len(v) == 100
    assert v.encode("0a A").tolist() == [string.printable.index(c) for c in "0a A"]


def test_ids_are_uint8_up_to_256_characters():
    v = Vocab([chr(0x100 + i) for i in range(256)])
    ids = v.encode(v.chars[255] + v.chars[0])
    assert v.dtype == ids.dtype == torch.uint8
    assert ids.tolist() == [255, 0]


def test_ids_widen_to_int32_beyond_256_characters():
    text = "".join(chr(0x4E00 + i) for i in range(300))
    v = Vocab.from_text(text)
    ids = v.encode(text)
    assert v.dtype == ids.dtype == torch.int32
    assert ids.tolist() == list(range(300))
    assert v.decode(ids) == text


def test_encoding_in_chunks_equals_encoding_at_once(monkeypatch):
    text = FRENCH * 5
    v = Vocab.from_text(text)
    whole = v.encode(text)
    monkeypatch.setattr(vocab_module, "_CHUNK", 7)
    assert torch.equal(v.encode(text), whole)


def test_unknown_characters_raise_naming_each_of_them():
    v = Vocab.from_text("abc ")
    with pytest.raises(UnknownCharacterError) as info:
        v.encode("a café ☃ ab")
    assert info.value.chars == sorted({"f", "é", "☃"})
    for c in ("'f'", "'é'", "'☃'"):
        assert c in str(info.value)


def test_unknown_character_error_is_a_value_error():
    assert issubclass(UnknownCharacterError, ValueError)


def test_unknown_characters_are_never_silently_mapped_to_id_zero():
    v = Vocab.from_text("ab")
    for text in ("a\x00b", "a~b", "aZb"):   # below, above and between the vocabulary's code points
        with pytest.raises(UnknownCharacterError):
            v.encode(text)
        assert v.encode(text, unknown="drop").tolist() == [0, 1]


def test_drop_removes_unknown_characters():
    v = Vocab.from_text("abc ")
    assert v.decode(v.encode("a café b", unknown="drop")) == "a ca b"


def test_fold_transliterates_accents_to_ascii():
    v = Vocab.printable()
    assert v.clean("café crème à Noël", unknown="fold") == "cafe creme a Noel"
    assert v.decode(v.encode("é", unknown="fold")) == "e"


def test_fold_drops_what_has_no_transliteration_in_the_vocabulary():
    v = Vocab.from_text("abc")
    assert v.clean("aéb€c", unknown="fold") == "abc"   # 'e' and 'EUR' are not in this vocabulary


def test_known_text_is_unchanged_by_every_policy():
    v = Vocab.from_text(FRENCH)
    for policy in ("error", "drop", "fold"):
        assert v.clean(FRENCH, policy) == FRENCH


def test_unknown_policy_name_is_checked():
    with pytest.raises(ValueError, match="policy"):
        Vocab.from_text("ab").encode("ab", unknown="ignore")


@pytest.mark.parametrize("chars", ["", "aa", ["ab", "c"]])
def test_vocab_refuses_empty_duplicate_or_multi_character_entries(chars):
    with pytest.raises(ValueError):
        Vocab(chars)


def test_vocabs_are_equal_when_their_characters_and_order_match():
    assert Vocab("abc") == Vocab.from_text("cab")
    assert Vocab("abc") != Vocab("bac")


def test_decode_accepts_lists_and_tensors():
    v = Vocab("xyz")
    assert v.decode([2, 0]) == v.decode(torch.tensor([2, 0], dtype=torch.uint8)) == "zx"
