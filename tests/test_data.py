"""Corpus: reading text files with reasons for refusals, the split, and random (x, y) batches."""
import pytest
import torch

from charrnn.data import Corpus, CorpusError, check_text, decode_text, min_corpus_chars, read_text
from charrnn.vocab import UnknownCharacterError, Vocab


def counting_corpus(n: int) -> Corpus:
    """A corpus whose train ids are 0, 1, ..., n-1, so a batch shows where it was cut."""
    vocab = Vocab([chr(0x100 + i) for i in range(max(n, 2))])
    return Corpus(vocab, torch.arange(n), torch.arange(n))


# --- reading files ----------------------------------------------------------------
def test_read_text_returns_utf8_text_without_a_bom(tmp_path):
    path = tmp_path / "t.txt"
    path.write_bytes("\ufeffHéllo 世界\n".encode())
    assert read_text(path) == "Héllo 世界\n"


def test_read_text_refuses_a_missing_file(tmp_path):
    with pytest.raises(CorpusError, match="no such file"):
        read_text(tmp_path / "absent.txt")


def test_read_text_refuses_an_empty_file(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")
    with pytest.raises(CorpusError, match="empty"):
        read_text(path)


def test_read_text_refuses_binary_data_naming_nul_bytes(tmp_path):
    path = tmp_path / "image.bin"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with pytest.raises(CorpusError, match="binary.*NUL"):
        read_text(path)


def test_read_text_refuses_non_utf8_saying_so(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("café au lait".encode("latin-1"))
    with pytest.raises(CorpusError, match="not valid UTF-8") as info:
        read_text(path)
    assert "position 3" in str(info.value)


def test_read_text_refuses_a_file_over_the_size_limit(tmp_path):
    path = tmp_path / "big.txt"
    path.write_text("x" * 2_000_001, encoding="utf-8")
    with pytest.raises(CorpusError, match="2.0 MB; the limit is 1 MB"):
        read_text(path, max_bytes=1_000_000)


def test_decode_text_names_its_source_in_the_message():
    with pytest.raises(CorpusError, match="upload.txt is empty"):
        decode_text(b"", "upload.txt")


# --- building a corpus -----------------------------------------------------------
def test_corpus_refuses_text_shorter_than_min_chars_naming_the_minimum():
    with pytest.raises(CorpusError) as info:
        Corpus.from_text("short text", min_chars=500)
    assert "500" in str(info.value) and "10" in str(info.value)


def test_corpus_refuses_empty_text():
    with pytest.raises(CorpusError, match="empty"):
        Corpus.from_text("")


def test_corpus_splits_the_tail_off_for_validation(text):
    corpus = Corpus.from_text(text, val_fraction=0.1)
    assert len(corpus.val) == int(len(text) * 0.1)
    assert torch.equal(torch.cat([corpus.train, corpus.val]), corpus.vocab.encode(text))


def test_corpus_with_a_given_vocab_applies_the_unknown_policy():
    with pytest.raises(UnknownCharacterError):
        Corpus.from_text("naïve text", Vocab.printable())
    corpus = Corpus.from_text("naïve text", Vocab.printable(), unknown="fold")
    assert corpus.vocab.decode(torch.cat([corpus.train, corpus.val])) == "naive text"


@pytest.mark.parametrize("seq_len, val_fraction", [(1, 0.1), (4, 0.1), (64, 0.01), (16, 0.1), (200, 0.1), (64, 0.5)])
def test_min_corpus_chars_leaves_a_training_portion_and_a_validation_split(seq_len, val_fraction):
    need = min_corpus_chars(seq_len, val_fraction)
    corpus = Corpus.from_text(("ab" * need)[:need], val_fraction=val_fraction, min_chars=need)
    assert len(corpus.train) >= seq_len + 1
    assert len(corpus.val) >= 2          # one validation prediction needs two characters
    x, _ = corpus.get_batch(2, seq_len, torch.Generator().manual_seed(0))
    assert x.shape == (2, seq_len)


# --- batches -----------------------------------------------------------------------
def test_batch_has_shape_b_by_t_and_y_is_x_shifted_by_one():
    corpus = counting_corpus(100)
    x, y = corpus.get_batch(8, 10, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (8, 10)
    assert x.dtype == y.dtype == torch.long
    starts = x[:, 0]
    assert torch.equal(x, starts[:, None] + torch.arange(10))   # each row is one contiguous portion
    assert torch.equal(y, x + 1)


def test_batch_of_real_text_is_the_encoded_text_shifted(text):
    corpus = Corpus.from_text(text)
    x, y = corpus.get_batch(4, 32, torch.Generator().manual_seed(1))
    train = corpus.vocab.decode(corpus.train)
    for row_x, row_y in zip(x, y, strict=True):
        portion = corpus.vocab.decode(row_x) + corpus.vocab.decode(row_y[-1:])
        assert portion in train
        assert corpus.vocab.decode(row_y) == portion[1:]


def test_last_possible_start_is_reachable_and_never_out_of_range():
    seq_len = 10
    corpus = counting_corpus(seq_len + 2)                        # starts 0 and 1 are the only valid ones
    x, y = corpus.get_batch(400, seq_len, torch.Generator().manual_seed(0))
    assert set(x[:, 0].tolist()) == {0, 1}
    assert int(y.max()) == seq_len + 1                           # the final character is a target


def test_a_split_of_exactly_seq_len_plus_one_gives_the_single_portion():
    corpus = counting_corpus(11)
    x, y = corpus.get_batch(3, 10, torch.Generator().manual_seed(0))
    assert torch.equal(x, torch.arange(10).expand(3, 10))
    assert torch.equal(y, torch.arange(1, 11).expand(3, 10))


def test_a_split_shorter_than_seq_len_plus_one_is_refused():
    with pytest.raises(CorpusError, match="seq_len"):
        counting_corpus(10).get_batch(1, 10, torch.Generator().manual_seed(0))


def test_seeded_generator_gives_the_same_batches():
    corpus = counting_corpus(1000)
    a = [corpus.get_batch(4, 8, g)[0] for g in [torch.Generator().manual_seed(7)] for _ in range(3)]
    b = [corpus.get_batch(4, 8, g)[0] for g in [torch.Generator().manual_seed(7)] for _ in range(3)]
    c = [corpus.get_batch(4, 8, g)[0] for g in [torch.Generator().manual_seed(8)] for _ in range(3)]
    assert all(torch.equal(p, q) for p, q in zip(a, b, strict=True))
    assert not all(torch.equal(p, q) for p, q in zip(a, c, strict=True))


def test_val_split_batches_come_from_the_validation_ids():
    vocab = Vocab("ab")
    corpus = Corpus(vocab, torch.zeros(50, dtype=torch.uint8), torch.ones(50, dtype=torch.uint8))
    x, _ = corpus.get_batch(4, 8, torch.Generator().manual_seed(0), split="val")
    assert bool((x == 1).all())


# --- encodings and NULs (a stranger's files) ------------------------------------------------
def test_a_utf16_file_with_a_bom_is_read_as_text(tmp_path):
    path = tmp_path / "windows.txt"
    path.write_bytes("Über die Brücke\nzweite Zeile\n".encode("utf-16"))       # BOM + little-endian
    assert read_text(path) == "Über die Brücke\nzweite Zeile\n"


def test_a_nul_anywhere_is_refused_naming_where(tmp_path):
    path = tmp_path / "late-nul.txt"
    path.write_bytes(b"a" * 1_100_000 + b"\x00tail")                            # beyond the first MiB
    with pytest.raises(CorpusError, match="NUL bytes, the first at byte 1,100,000"):
        read_text(path)


def test_nul_characters_in_text_are_refused_whatever_the_encoding():
    with pytest.raises(CorpusError, match="NUL characters"):
        check_text("fine\x00then", "The pasted text")
    with pytest.raises(CorpusError, match="NUL"):
        decode_text("ok\x00".encode("utf-16"), "u16.txt")
    assert check_text("\ufeffplain") == "plain"


def test_a_folder_given_as_the_corpus_is_named_as_a_folder(tmp_path):
    with pytest.raises(CorpusError, match="is a folder"):
        read_text(tmp_path)


# --- streams carried across steps ------------------------------------------------
def test_streams_continue_where_the_last_portion_ended():
    corpus = counting_corpus(10_000)
    g = torch.Generator().manual_seed(3)
    x1, y1, pos, restarted = corpus.stream_batch(None, 6, 16, g)
    assert restarted.all()                                       # the first step starts every stream
    assert torch.equal(x1, x1[:, :1] + torch.arange(16)) and torch.equal(y1, x1 + 1)
    x2, y2, pos2, restarted2 = corpus.stream_batch(pos, 6, 16, g)
    assert not restarted2.any()
    assert torch.equal(x2[:, 0], y1[:, -1])                      # each stream reads on, no gap, no overlap
    assert torch.equal(x2, x1 + 16) and torch.equal(pos2, pos + 16)


def test_a_stream_at_the_end_restarts_at_a_random_place_and_is_marked():
    seq_len, n = 10, 40
    corpus = counting_corpus(n)
    g = torch.Generator().manual_seed(0)
    pos, seen_restart = None, 0
    for _ in range(50):
        x, y, pos, restarted = corpus.stream_batch(pos, 8, seq_len, g)
        assert int(x.min()) >= 0 and int(y.max()) <= n - 1   # never past the split's end
        assert torch.equal(y, x + 1) and torch.equal(x, x[:, :1] + torch.arange(seq_len))
        seen_restart += int(restarted.sum())
        assert bool(((x[:, 0] + seq_len + 1 > n) & ~restarted).any()) is False
    assert seen_restart > 8                                      # streams run off the end and start again


def test_stream_batches_are_repeatable_with_the_same_seed():
    corpus = counting_corpus(1000)

    def run(seed):
        g, pos, out = torch.Generator().manual_seed(seed), None, []
        for _ in range(100):
            x, _, pos, _ = corpus.stream_batch(pos, 4, 8, g)
            out.append(x)
        return torch.stack(out)
    assert torch.equal(run(5), run(5)) and not torch.equal(run(5), run(6))
