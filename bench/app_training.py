"""Training where users train: a run started through the app's /start_training vs the CLI's best precision.

In one run, on the bundled Tiny Shakespeare with the quick preset's model and batch (H256, 16 x 64):
1. The CLI trains for --seconds in float32 (``--autocast none``), in bf16 (``--autocast bf16``) and with
   ``--autocast auto`` (which times both at the start and keeps the faster): the best of the first two
   is the machine's best precision, and auto's rate is compared to it.
2. The app (built in this process as ``app.py`` builds it) starts the same run through ``/start_training``:
   once with its shipped trainer threads and nobody generating (the rate compared to the CLI's best), then
   with the trainer's torch threads set to each of --trainer-threads while /generate is called --repeats
   times (400 characters each) and timed: first generated characters and chars/s.
Rates are the mean chars/s of a run's progress records after the first (which includes start-up).

    python -m bench.app_training
    python -m bench.app_training --seconds 30 --trainer-threads 1 2 0
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import ROOT, machine_line
from charrnn.runs.store import RunDir
from webui.settings import Settings

QUICK = dict(preset="quick", hidden=256, layers=1, seq_len=64, batch_size=16, lr=0.004)
TARGET_APP = 0.9            # the app's run vs the CLI's best precision
TARGET_AUTO = 0.95          # autocast auto vs the better of float32 and bf16


def run_rate(directory: Path) -> tuple[float, dict]:
    """Mean chars/s of a run's records after the first, and the precision its first record carries."""
    records = [json.loads(line) for line in (directory / "metrics.jsonl").read_text().splitlines() if line.strip()]
    rates = [r["chars_per_s"] for r in records if "chars_per_s" in r and "end" not in r]
    precision = next((r["precision"] for r in records if "precision" in r), {})
    return statistics.mean(rates[1:] or rates), precision


def cli_rate(root: Path, name: str, seconds: float, autocast: str) -> tuple[float, dict] | str:
    """(rate, precision) of a CLI run, or the CLI's error line when the run is refused (bf16 that does not run)."""
    cmd = [sys.executable, "-m", "charrnn", "--checkpoints", str(root), "train", "--data", "data/tinyshakespeare.txt",
           "--preset", "quick", "--minutes", str(seconds / 60), "--autocast", autocast, "--name", name, "--quiet"]
    done = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode == 2:
        return done.stderr.strip().splitlines()[-1]
    done.check_returncode()
    return run_rate(root / name)


def generate_timings(client, checkpoint: str, repeats: int) -> list[tuple[float, float]]:
    """(ms to the first generated characters, chars/s of the rest) for each of ``repeats`` generations."""
    out = []
    for i in range(repeats):
        t0 = time.perf_counter()
        first = None
        text = ""
        for text in client.submit(checkpoint=checkpoint, prime="ROMEO:", temperature=0.8, length=400, top_k=0,
                                  seed=i + 1, api_name="/generate"):
            if first is None and len(text) > len("ROMEO:"):
                first = time.perf_counter()
        done = time.perf_counter()
        out.append(((first - t0) * 1000, (len(text) - len("ROMEO:")) / max(done - t0, 1e-9)))
    return out


def app_run(root: Path, threads: int, seconds: float, repeats: int) -> dict:
    """Start the quick run through the app's /start_training with the trainer at ``threads``; time generation."""
    from gradio_client import Client

    sys.path.insert(0, str(ROOT))
    from webui.context import AppContext
    from webui.demo import create_demo, launch
    from webui.models import BUNDLED_KEY
    from webui.settings import Settings

    ctx = AppContext(Settings(root=root, trainer_threads=threads))
    demo = create_demo(ctx.settings, ctx)
    launch(demo, ctx, prevent_thread_lock=True, quiet=True, server_port=free_port())
    name = f"app-threads-{threads}" + ("-generating" if repeats else "-alone")
    try:
        client = Client(demo.local_url, verbose=False)
        client.predict(None, "bundled", "tinyshakespeare.txt", None, None, QUICK["preset"], QUICK["hidden"],
                       QUICK["layers"], QUICK["seq_len"], QUICK["batch_size"], QUICK["lr"], 0, seconds / 60, name,
                       None, api_name="/start_training")
        while not RunDir(root / name).records():
            time.sleep(0.2)
        timings = generate_timings(client, BUNDLED_KEY, repeats) if repeats else []
        ctx.jobs.proc.wait(timeout=seconds * 4 + 120)
    finally:
        demo.close()
    rate, precision = run_rate(root / name)
    return {"threads": threads, "rate": rate, "precision": precision, "timings": timings}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=25.0, help="training time of each run")
    p.add_argument("--repeats", type=int, default=5, help="generations timed while the app's run trains")
    p.add_argument("--trainer-threads", type=int, nargs="+", default=[1, 0],
                   help="torch threads of the app's trainer to compare (0 = torch's default: every core), each with "
                        "generations beside it; the app's settings' own thread count also trains alone")
    return p.parse_args(argv)


def verdict(ok: bool) -> str:
    return "MET" if ok else "NOT MET"


def main(argv=None) -> None:
    args = parse_args(argv)
    load_before, machine = os.getloadavg()[0], machine_line()     # before the app sets its own threads
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cli = {mode: cli_rate(root, f"cli-{mode}", args.seconds, mode) for mode in ("none", "bf16", "auto")}
        alone = app_run(root, Settings(root=root).trainer_threads, args.seconds, 0)   # the app as it ships, quiet
        apps = [app_run(root, threads, args.seconds, args.repeats) for threads in args.trainer_threads]
    runs = [m for m in ("none", "bf16") if not isinstance(cli[m], str)]
    best_mode = max(runs, key=lambda m: cli[m][0])
    best = cli[best_mode][0]
    print("# training where users train: the app's /start_training vs the CLI (quick preset: H256, 16 x 64)")
    print(machine)
    print(f"command: python {' '.join(['-m', 'bench.app_training', *sys.argv[1:]])}")
    print(f"1-min load average before {load_before:.2f}, after {os.getloadavg()[0]:.2f}\n")
    for mode, label in (("none", "CLI float32 (--autocast none)"), ("bf16", "CLI bf16 (--autocast bf16)")):
        print(f"{label:<44}" + (f"refused: {cli[mode]}" if isinstance(cli[mode], str) else
                                f"{cli[mode][0]:>10,.0f} chars/s"))
    auto_rate, auto_precision = cli["auto"]
    print(f"{'CLI --autocast auto':<44}{auto_rate:>10,.0f} chars/s   chose {auto_precision.get('choice')} "
          f"from {auto_precision.get('rates')}")
    same = {"none": "float32", "bf16": "bf16"}[best_mode] == auto_precision.get("choice")
    print(f"auto vs the better precision ({best_mode}): {auto_rate / best:.2f}x "
          f"(target >= {TARGET_AUTO}: {verdict(auto_rate / best >= TARGET_AUTO)}); auto's choice "
          f"{'matches' if same else 'differs from'} the better of the two runs\n")
    threads = alone["threads"] or "torch default"
    print(f"app trainer as shipped ({threads} threads), nobody generating: {alone['rate']:,.0f} chars/s = "
          f"{alone['rate'] / best:.2f}x the CLI's best (target >= {TARGET_APP}: "
          f"{verdict(alone['rate'] / best >= TARGET_APP)}); chose {alone['precision'].get('choice')}")
    for run in apps:
        firsts = [ms for ms, _ in run["timings"]]
        speeds = [cps for _, cps in run["timings"]]
        threads = run["threads"] or "torch default"
        print(f"app trainer, {threads} threads: {run['rate']:,.0f} chars/s = {run['rate'] / best:.2f}x the CLI's best "
              f"(target >= {TARGET_APP}: {verdict(run['rate'] / best >= TARGET_APP)}); chose "
              f"{run['precision'].get('choice')}")
        print(f"  generation meanwhile: first characters median {statistics.median(firsts):.0f} ms "
              f"(max {max(firsts):.0f}), {statistics.median(speeds):,.0f} chars/s median, {len(firsts)} requests")


if __name__ == "__main__":
    main()
