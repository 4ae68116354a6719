"""Build the bundled English base model (``models/english-base``) from Debian's packages, so anyone can rebuild it.

The corpus: Jane Austen's six novels (public domain; Debian's ``r-cran-janeaustenr``, MIT), the glosses and example
sentences of every fourth WordNet 3.0 synset (``wordnet-base``, the WordNet 3.0 licence: use, copy and distribute
with its notice) and Ambrose Bierce's *The Devil's Dictionary* (``dict-devil``, public domain). None of it is a
text the benchmarks judge on (Tiny Shakespeare, ``bench.recipes``' Python source and Debian FAQs, the licence texts
kept as our own check). The pieces (a chapter, a block of glosses, a block of entries) are shuffled with a fixed
seed, so the held-out last 10% is a mix of all three.

    python scripts/english_base.py corpus english.txt          # apt-get download + dpkg-deb -x, no install
    python scripts/english_base.py train english.txt           # trains models/english-base (~15 min on 2 cores)

Step-limited (not timed), so the same corpus and seed give the same model on any machine of the same precision.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import random
import re
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {"r-cran-janeaustenr": "MIT (the package); the novels are public domain",
            "wordnet-base": "WordNet 3.0 licence (Princeton University): use, copy, modify and distribute with its "
                            "notice",
            "dict-devil": "public domain (copyright expired)"}
AUSTEN = "usr/lib/R/site-library/janeaustenr/data/Rdata"
# the janeaustenr data, in the order of its lazy-load index (alphabetical)
NOVELS = ("Emma", "Mansfield Park", "Northanger Abbey", "Persuasion", "Pride and Prejudice", "Sense and Sensibility")
WORDNET_EVERY = 4
NAME = "english-base"
TRAIN_ARGS = ["--preset", "auto", "--hidden", "512", "--embed", "64", "--iterations", "40000", "--minutes", "0",
              "--patience", "0", "--eval-every", "1000", "--eval-chars", "200000", "--seed", "1337"]
WORDNET_NOTICE = """WordNet Release 3.0 This software and database is being provided to you, the LICENSEE, by
Princeton University under the following license. By obtaining, using and/or copying this software and database,
you agree that you have read, understood, and will comply with these terms and conditions.: Permission to use, copy,
modify and distribute this software and database and its documentation for any purpose and without fee or royalty
is hereby granted, provided that you agree to comply with the following copyright notice and statements, including
the disclaimer, and that the same appear on ALL copies of the software, database and documentation, including
modifications that you make for internal use or for distribution. WordNet 3.0 Copyright 2006 by Princeton
University. All rights reserved. THIS SOFTWARE AND DATABASE IS PROVIDED "AS IS" AND PRINCETON UNIVERSITY MAKES NO
REPRESENTATIONS OR WARRANTIES, EXPRESS OR IMPLIED. BY WAY OF EXAMPLE, BUT NOT LIMITATION, PRINCETON UNIVERSITY MAKES
NO REPRESENTATIONS OR WARRANTIES OF MERCHANT- ABILITY OR FITNESS FOR ANY PARTICULAR PURPOSE OR THAT THE USE OF THE
LICENSED SOFTWARE, DATABASE OR DOCUMENTATION WILL NOT INFRINGE ANY THIRD PARTY PATENTS, COPYRIGHTS, TRADEMARKS OR
OTHER RIGHTS. The name of Princeton University or Princeton may not be used in advertising or publicity pertaining
to distribution of the software and/or database. Title to copyright in this software, database and any associated
documentation shall at all times remain with Princeton University and LICENSEE agrees to preserve same."""


class RReader:
    """Just enough of R's XDR serialisation to read a lazy-load database of character vectors."""

    def __init__(self, data: bytes):
        self.data, self.at, self.refs = data, 0, []

    def int(self) -> int:
        value = struct.unpack(">i", self.data[self.at:self.at + 4])[0]
        self.at += 4
        return value

    def top(self):
        if self.data[:2] != b"X\n":
            raise ValueError("not R's XDR serialisation")
        self.at = 2
        version = self.int()
        self.int(), self.int()
        if version == 3:
            length = self.int()                # the native encoding's name
            self.at += length
        return self.item()

    def item(self):
        flags = self.int()
        kind, attrs, tagged = flags & 0xFF, flags & (1 << 9), flags & (1 << 10)
        if kind in (254, 242):                 # NULL, the empty environment
            return None
        if kind == 255:                        # a reference to an earlier symbol
            return self.refs[(flags >> 8) - 1]
        if kind == 9:                          # one string
            n = self.int()
            if n == -1:
                return None
            text = self.data[self.at:self.at + n].decode("utf-8")
            self.at += n
            return text
        if kind == 1:                          # a symbol
            symbol = ("symbol", self.item())
            self.refs.append(symbol)
            return symbol
        if kind in (16, 19, 13, 10, 14):       # character, list, integer, logical, double vectors
            n = self.int()
            if kind in (16, 19):
                value = [self.item() for _ in range(n)]
            else:
                width = 8 if kind == 14 else 4
                value = list(struct.unpack(f">{n}{'d' if kind == 14 else 'i'}", self.data[self.at:self.at + width * n]))
                self.at += width * n
            if attrs:
                self.item()
            return value
        if kind == 2:                          # a pairlist (attributes)
            out = []
            while True:
                if attrs:
                    self.item()
                tag = self.item() if tagged else None
                out.append((tag, self.item()))
                flags = self.int()
                if (flags & 0xFF) == 254:
                    return out
                attrs, tagged = flags & (1 << 9), flags & (1 << 10)
        raise ValueError(f"R type {kind} is not read here")


def austen(root: Path) -> list[str]:
    """The novels, one piece per chapter."""
    index = RReader(gzip.decompress((root / f"{AUSTEN}.rdx").read_bytes())).top()
    db = (root / f"{AUSTEN}.rdb").read_bytes()
    pieces = []
    for (offset, length), _novel in zip(index[0], NOVELS, strict=False):      # the first six objects: the novels
        lines = RReader(zlib.decompress(db[offset + 4:offset + length])).top()
        text = "\n".join(line or "" for line in lines)
        pieces += [p.strip("\n") + "\n" for p in re.split(r"\n(?=chapter [0-9ivxlc]+\b)", text, flags=re.I)
                   if p.strip()]
    return pieces


def wordnet(root: Path) -> list[str]:
    """Every WORDNET_EVERY-th synset as "words (part of speech): gloss", in blocks of 200 lines."""
    lines = []
    for pos, name in (("noun", "noun"), ("verb", "verb"), ("adj", "adjective"), ("adv", "adverb")):
        synsets = [line for line in (root / f"usr/share/wordnet/data.{pos}").read_text("latin-1").splitlines()
                   if not line.startswith("  ")]
        for line in synsets[::WORDNET_EVERY]:
            fields, gloss = line.split(" | ", 1)
            parts = fields.split()
            words = [parts[4 + 2 * i].replace("_", " ") for i in range(int(parts[3], 16))]
            words = [re.sub(r"\([a-z]+\)$", "", w) for w in words]
            lines.append(f"{', '.join(words)} ({name}): {gloss.strip()}\n")
    return ["".join(lines[i:i + 200]) for i in range(0, len(lines), 200)]


def devil(root: Path) -> list[str]:
    """The Devil's Dictionary from its preface on, in blocks of 40 entries."""
    text = gzip.decompress((root / "usr/share/dictd/devil.dict.dz").read_bytes()).decode("latin-1")
    text = text[text.index("_The Devil's Dictionary_ was begun"):]
    entries = re.split(r"\n(?=[A-Z][A-Z' -]+, [a-z.]+)", text)
    return ["\n".join(entries[i:i + 40]).strip("\n") + "\n" for i in range(0, len(entries), 40)]


def fetch(debs: Path) -> Path:
    """The three packages downloaded (not installed) and unpacked under one folder; their versions recorded."""
    subprocess.run(["apt-get", "download", *PACKAGES], cwd=debs, check=True)
    root = debs / "root"
    for deb in sorted(debs.glob("*.deb")):
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    return root


def build(out: Path, debs: Path | None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(debs) if debs else Path(tmp)
        root = fetch(folder) if not (folder / "root").is_dir() else folder / "root"
        versions = {deb.name.split("_")[0]: deb.name.split("_")[1].replace("%3a", ":")
                    for deb in folder.glob("*.deb")}
        sources = {"r-cran-janeaustenr": austen(root), "wordnet-base": wordnet(root), "dict-devil": devil(root)}
    pieces = [p for ps in sources.values() for p in ps]
    random.Random(0).shuffle(pieces)
    text = "\n".join(pieces)
    out.write_text(text, encoding="utf-8")
    return {"file": out.name, "chars": len(text), "sha256": hashlib.sha256(text.encode()).hexdigest(),
            "sources": {name: {"version": versions.get(name), "licence": PACKAGES[name],
                               "chars": sum(len(p) for p in ps)} for name, ps in sources.items()}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    corpus = sub.add_parser("corpus", help="assemble the corpus from Debian's packages")
    corpus.add_argument("out", type=Path)
    corpus.add_argument("--debs", type=Path, help="a folder holding the downloaded .deb files (else a temporary one)")
    train = sub.add_parser("train", help="train models/english-base on the corpus (its .json beside it)")
    train.add_argument("corpus", type=Path)
    train.add_argument("--out", type=Path, default=ROOT / "models" / NAME)
    args = parser.parse_args(argv)
    if args.command == "corpus":
        record = build(args.out, args.debs)
        args.out.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n")
        print(json.dumps(record, indent=1))
        return 0
    record = json.loads(args.corpus.with_suffix(".json").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "charrnn", "--checkpoints", tmp, "train", "--data", str(args.corpus),
                        "--name", NAME, *TRAIN_ARGS], cwd=ROOT, check=True)
        ship(Path(tmp) / NAME, args.out, record)
    return 0


SHIPPED = ("model.safetensors", "checkpoint.json", "metrics.jsonl", "status.json", "loss.png", "loss.pdf")


def ship(run: Path, out: Path, record: dict) -> None:
    """The run's kept model and its record (no local paths, no optimizer state) and SOURCES.md into ``out``."""
    import shutil

    out.mkdir(parents=True, exist_ok=True)
    for name in SHIPPED:
        shutil.copy2(run / name, out / name)
    header = json.loads((run / "checkpoint.json").read_text())
    rows = "\n".join(f"| `{name}` | {src['version']} | {src['chars']:,} | {src['licence']} |"
                     for name, src in record["sources"].items())
    (out / "SOURCES.md").write_text(f"""# english-base: what it read, and under which licences

A character-level LSTM (embedding {header['model_config']['embed']}, hidden {header['model_config']['hidden']}, \
{header['params']:,} parameters) trained by `scripts/english_base.py` on {record['chars']:,} characters of English \
assembled from three Debian packages (downloaded with `apt-get download`, unpacked with `dpkg-deb -x`, nothing \
installed). Kept model: step {header['best_step']:,}, **{header['best_val_loss']:.4f} nats/char** on 200,000 \
characters of the held-out last 10%.

| Debian package | version | characters | licence |
| --- | --- | ---: | --- |
{rows}

- Jane Austen's six novels (Emma, Mansfield Park, Northanger Abbey, Persuasion, Pride and Prejudice, Sense and
  Sensibility), as Julia Silge's janeaustenr packages them from Project Gutenberg: public domain.
- WordNet 3.0: the words, part of speech and gloss (definition and example sentences) of every fourth synset,
  under its licence:

> {WORDNET_NOTICE.replace(chr(10), " ")}

- Ambrose Bierce, *The Devil's Dictionary* (1911), from its preface on: public domain.

Corpus SHA-256 `{record['sha256']}`. None of it is a text the benchmarks judge on (Tiny Shakespeare, the Python
source and Debian FAQs of `bench.recipes`, the licence texts kept as our own check).

Rebuild: `python scripts/english_base.py corpus english.txt && python scripts/english_base.py train english.txt`
""", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
