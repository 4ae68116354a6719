"""The auto recipe vs the fixed presets, on texts of different sizes, at the same budget, in one run.

Each run is the CLI as a user starts it (``python -m charrnn train --preset P --minutes M``): the
model it keeps (the best validation loss it saw) is then evaluated on the whole held-out last 10%
of its text. Texts: slices of the bundled Tiny Shakespeare (80 KB, 300 KB, the whole 1.1 MB), a text of
another kind made from what every Python install has (200 KB of the standard library's own source: code,
with its comments and docstrings; nothing is downloaded), where Debian's FAQ packages are installed
(``apt-get install debian-faq debian-faq-de``) an English FAQ cut to 85 KB (curly quotes and all, like the
FAQ issue 11 is checked on) and its German translation (200 KB, umlauts and ß), and any --text files
given. --only picks texts by name.

    python -m bench.recipes
    python -m bench.recipes --seconds 120 --presets auto default --text my-faq.txt
    python -m bench.recipes --only python-stdlib-200k.txt
    python -m bench.recipes --starts --seconds 120 --only shakespeare-80k.txt    # from zero vs from the base
"""
from __future__ import annotations

import argparse
import math
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import ROOT, machine_line
from charrnn.runs.store import RunDir, load_checkpoint

SLICES = (80_000, 300_000, None)      # characters of Tiny Shakespeare; None = all of it
CODE_CHARS = 200_000                  # characters of Python source
FAQ_DIR = Path("/usr/share/doc/debian/FAQ")   # Debian's packages debian-faq and debian-faq-de (not shipped here)
FAQS = {"debian-faq-en-85k.txt": ("debian-faq.en.txt.gz", 85_000), "debian-faq-de.txt": ("debian-faq.de.txt.gz", None)}
CODE_MODULES = ("argparse", "dataclasses", "fractions", "heapq", "json/decoder", "json/encoder", "shlex",
                "statistics", "string", "textwrap", "typing", "zipfile/__init__")   # as ordered here, then cut


def kept_val_loss(run: Path) -> tuple[float, dict]:
    """The kept model's loss on the whole validation split of its text, and its header."""
    import torch

    from charrnn.config import TrainConfig
    from charrnn.data import read_text
    from charrnn.runs.runner import build_corpus
    from charrnn.train import evaluate

    model, vocab, header = load_checkpoint(run)
    cfg = TrainConfig.from_dict(header["train_config"])
    corpus = build_corpus(read_text(RunDir(run).corpus_path()), cfg, vocab)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    return evaluate(model, corpus.val, cfg.seq_len, cfg.batch_size), header


def train(root: Path, text: Path, preset: str, seconds: float, extra: list[str], tag: str = "") -> Path:
    name = f"{text.stem}-{preset}" + (f"-{tag}" if tag else "")
    subprocess.run([sys.executable, "-m", "charrnn", "--checkpoints", str(root), "train", "--data", str(text),
                    "--preset", preset, "--minutes", str(seconds / 60), "--name", name, "--quiet", *extra],
                   cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return root / name


def texts(tmp: Path, extra: list[Path]) -> list[Path]:
    from charrnn.data import read_text

    whole = read_text(ROOT / "data" / "tinyshakespeare.txt")
    made = []
    for chars in SLICES:
        path = tmp / (f"shakespeare-{chars // 1000}k.txt" if chars else "shakespeare-all.txt")
        path.write_text(whole[:chars] if chars else whole, encoding="utf-8")
        made.append(path)
    return made + [python_source(tmp / f"python-stdlib-{CODE_CHARS // 1000}k.txt")] + debian_faqs(tmp) + extra


def debian_faqs(tmp: Path) -> list[Path]:
    """The FAQS texts made from Debian's installed FAQ packages (non-breaking spaces as spaces); none where the
    packages are not installed (it says so)."""
    import gzip

    made = []
    for name, (source, chars) in FAQS.items():
        if not (FAQ_DIR / source).is_file():
            print(f"skipping {name}: {FAQ_DIR / source} is missing (apt-get install debian-faq debian-faq-de)")
            continue
        text = gzip.decompress((FAQ_DIR / source).read_bytes()).decode("utf-8").replace("\xa0", " ")
        (tmp / name).write_text(text[:chars] if chars else text, encoding="utf-8")
        made.append(tmp / name)
    return made


def python_source(path: Path) -> Path:
    """CODE_CHARS characters of the running Python's standard library source (CODE_MODULES, in order; printable
    ASCII lines only, so the vocabulary is the one the presets expect)."""
    import sysconfig

    stdlib, parts, size = Path(sysconfig.get_paths()["stdlib"]), [], 0
    for module in CODE_MODULES:
        file = stdlib / f"{module}.py"
        if not file.is_file():
            continue
        lines = [line for line in file.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)
                 if line.isascii()]
        parts.append("".join(lines))
        size += len(parts[-1])
        if size >= CODE_CHARS:
            break
    path.write_text("".join(parts)[:CODE_CHARS], encoding="utf-8")
    return path


LICENCES = ("GPL-3", "Apache-2.0", "LGPL-3", "MPL-2.0", "Artistic", "GFDL-1.3")   # /usr/share/common-licenses, in order
LICENCE_CHARS = 100_000


def licences(path: Path) -> Path | None:
    """Our own check text for starting from the base, tuned on by nobody: the licence texts every Debian system has
    (legal English, unlike anything the base read), joined as bench/RESULTS.md's first --init measurement did."""
    folder = Path("/usr/share/common-licenses")
    parts = [(folder / name).read_text(encoding="utf-8") for name in LICENCES if (folder / name).is_file()]
    if not parts:
        print(f"skipping {path.name}: {folder} is missing")
        return None
    path.write_text("".join(parts)[:LICENCE_CHARS], encoding="utf-8")
    return path


def compare_starts(args, tmp: Path, texts_: list[Path]) -> None:
    """auto from zero vs from the bundled base on each text (both forced), with auto's probe and its choice."""
    from charrnn.runs import startpoint

    rows = []
    for text in texts_:
        zero, _ = kept_val_loss(train(tmp / "runs", text, "auto", args.seconds, ["--init", "none"], "zero"))
        based, header = kept_val_loss(train(tmp / "runs", text, "auto", args.seconds,
                                            ["--init", str(startpoint.BUNDLED_BASE)], "base"))
        probe = probe_of(text)
        choice = startpoint.decide(probe)
        rows.append((text.name, text.stat().st_size, zero, based, probe, choice))
    print(f"# auto from zero vs from the bundled English base: the kept model's loss on the whole held-out 10%, "
          f"{args.seconds:.0f} s each")
    print(machine_line())
    print(f"command: python {' '.join(['-m', 'bench.recipes', *sys.argv[1:]])}")
    print(f"auto's rule: start from the base when its loss on the held-out part is at most "
          f"{startpoint.BASE_RATIO:.0%} of the text's unigram entropy\n")
    print(f"{'text':<26}{'bytes':>10}{'from zero':>11}{'from base':>11}{'gain':>8}{'base probe':>12}{'ratio':>7}"
          f"{'auto':>6}{'auto gain':>11}")
    for name, size, zero, based, probe, choice in rows:
        gain = zero - based
        print(f"{name:<26}{size:>10,}{zero:>11.4f}{based:>11.4f}{gain:>+8.4f}{probe['base_loss']:>12.3f}"
              f"{probe['ratio']:>7.2f}{choice:>6}{gain if choice == 'base' else 0.0:>+11.4f}")


def probe_of(text: Path) -> dict:
    """auto's probe of the bundled base on ``text``, as a run of the auto preset makes it."""
    from charrnn.config import preset_configs
    from charrnn.data import read_text
    from charrnn.runs import startpoint
    from charrnn.runs.runner import start_from

    body = read_text(text)
    model_cfg, train_cfg = preset_configs("auto", None, None, {"minutes": 2.0}, len(body))
    model, corpus, _ = start_from(startpoint.BUNDLED_BASE, body, model_cfg, train_cfg)
    return startpoint.probe(model, corpus, train_cfg)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=60.0, help="training budget of each run")
    p.add_argument("--presets", nargs="+", default=["auto", "long"], help="presets compared")
    p.add_argument("--text", type=Path, action="append", default=[], help="another text to compare on")
    p.add_argument("--only", nargs="+", help="compare on these texts only (by file name)")
    p.add_argument("--train-args", default="", help='more `charrnn train` flags for every run, for sweeps, e.g. '
                   '--train-args="--input-dropout 0.2"')
    p.add_argument("--starts", action="store_true", help="compare auto from zero with auto from the bundled "
                   "English base (issue 28), on the texts and on our own licence texts")
    args = p.parse_args(argv)
    load_before = os.getloadavg()[0]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.starts:
            own = licences(tmp / f"licences-{LICENCE_CHARS // 1000}k.txt")
            chosen = [t for t in texts(tmp, args.text + ([own] if own else [])) if not args.only or t.name in args.only]
            compare_starts(args, tmp, chosen)
            print(f"1-min load average before {load_before:.2f}, after {os.getloadavg()[0]:.2f}")
            return
        for text in [t for t in texts(tmp, args.text) if not args.only or t.name in args.only]:
            for preset in args.presets:
                loss, header = kept_val_loss(train(tmp / "runs", text, preset, args.seconds,
                                                   shlex.split(args.train_args)))
                cfg = header["model_config"]
                model = f"H{cfg['hidden']} d{cfg['dropout']:g}" + (f" in{cfg['input_dropout']:g}"
                                                                   if cfg.get("input_dropout") else "")
                rows.append((text.name, text.stat().st_size, preset, loss, model, header.get("best_step"),
                             header.get("step")))
    print(f"# recipes per text: the kept model's loss on the whole held-out 10%, {args.seconds:.0f} s each")
    print(machine_line())
    print(f"command: python {' '.join(['-m', 'bench.recipes', *sys.argv[1:]])}")
    print(f"1-min load average before {load_before:.2f}, after {os.getloadavg()[0]:.2f}\n")
    print(f"{'text':<24}{'bytes':>11}{'preset':>9}{'val nats/char':>15}{'bits/char':>11}{'model':>20}"
          f"{'kept step':>11}{'steps':>8}")
    for name, size, preset, loss, model, best, steps in rows:
        print(f"{name:<24}{size:>11,}{preset:>9}{loss:>15.4f}{loss / math.log(2):>11.3f}{model:>20}"
              f"{best if best is not None else '-':>11}{steps if steps is not None else '-':>8}")


if __name__ == "__main__":
    main()
