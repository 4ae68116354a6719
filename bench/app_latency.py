"""App responsiveness: start-up time, time to the first streamed characters, and training under UI polling.

1. Start ``python app.py`` (free port, a temporary checkpoint folder holding a small
   freshly trained checkpoint) and time until the page is served (HTTP 200 on /).
2. Call the app's "/generate" endpoint with gradio_client and time until the first
   streamed update (the app echoes the prime first) and until the first generated characters.
3. Train the ``long`` preset with the CLI for --train-seconds at a time, in the folder the
   app watches: alone, and while this process calls the app's own poll function (``webui.demo.poll``,
   what the browser's gr.Timer triggers; it is a private endpoint, so it is called in-process with
   the app's settings) every poll_seconds; compare characters per second. The two conditions
   alternate for --rounds rounds (alone, polled, polled, alone, ...) so that a drift in the
   machine's load hits both, and both train in the same precision (--autocast, float32 unless told):
   with ``auto`` each run would measure its own, and a different choice would be mistaken for the
   poll's cost.

    python -m bench.app_latency
    python -m bench.app_latency --train-seconds 60 --repeats 10
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from bench.common import ROOT, machine_line

TARGET_START_S = 8.0
TARGET_FIRST_MS = 200.0
TARGET_SLOWDOWN = 0.05


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(port: int, checkpoints: Path, timeout: float = 60.0) -> tuple[subprocess.Popen, float]:
    """Launch app.py and return the process and the seconds until its page answered 200."""
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1",
           "GRADIO_ANALYTICS_ENABLED": "False", "CHARRNN_CHECKPOINTS": str(checkpoints)}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}/"
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"app.py exited with status {proc.returncode}:\n{proc.stderr.read()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    proc.port = port
                    return proc, time.perf_counter() - t0
        except OSError:
            time.sleep(0.05)
    proc.terminate()
    raise RuntimeError(f"app.py did not serve {url} within {timeout:.0f} s")


def train_checkpoint(checkpoints: Path, name: str) -> None:
    """A small checkpoint for the app to generate from (the quick preset, a few steps)."""
    cmd = [sys.executable, "-m", "charrnn", "--checkpoints", str(checkpoints), "train", "--data",
           "data/tinyshakespeare.txt", "--preset", "quick", "--iterations", "30", "--name", name, "--quiet"]
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def first_output_ms(client, api_name: str, kwargs: dict, repeats: int) -> tuple[list[float], list[float]]:
    """Milliseconds from submitting a generate request to its first update, and to its first new characters."""
    first, generated = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        job = client.submit(api_name=api_name, **kwargs)
        for n, out in enumerate(job):
            if n == 0:
                first.append((time.perf_counter() - t0) * 1000)
            if len(out) > len(kwargs["prime"]):
                generated.append((time.perf_counter() - t0) * 1000)
                break
        job.cancel()
    return first, generated


def train_rate(checkpoints: Path, name: str, seconds: float, autocast: str = "none") -> float:
    """Mean characters per second of a CLI training run of the long preset for ``seconds``."""
    cmd = [sys.executable, "-m", "charrnn", "--checkpoints", str(checkpoints), "train", "--data",
           "data/tinyshakespeare.txt", "--preset", "long", "--minutes", str(seconds / 60), "--name", name,
           "--autocast", autocast, "--quiet"]
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    records = [json.loads(line) for line in (checkpoints / name / "metrics.jsonl").read_text().splitlines()]
    rates = [r["chars_per_s"] for r in records if "chars_per_s" in r and "end" not in r]
    return statistics.mean(rates[1:] or rates)   # the first window includes start-up


def poll_while(checkpoints: Path, stop: threading.Event) -> list[float]:
    """Call the app's poll as the page's timer does, every poll_seconds, until ``stop``; return call durations (s)."""
    from webui.context import AppContext
    from webui.demo import poll
    from webui.settings import Settings

    ctx = AppContext(Settings(root=checkpoints))
    durations, view = [], {}
    while not stop.is_set():
        t0 = time.perf_counter()
        *_, view = poll(ctx, view, None, None)
        durations.append(time.perf_counter() - t0)
        stop.wait(max(0.0, ctx.settings.poll_seconds - durations[-1]))
    return durations


def polled_rate(checkpoints: Path, name: str, seconds: float, autocast: str) -> tuple[float, list[float]]:
    """Training rate while the app's poll function runs in this process against the same folder."""
    stop, box = threading.Event(), {}
    poller = threading.Thread(target=lambda: box.setdefault("d", poll_while(checkpoints, stop)))
    poller.start()
    try:
        rate = train_rate(checkpoints, name, seconds, autocast)
    finally:
        stop.set()
        poller.join()
    return rate, box.get("d", [])


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--generate-api", default="/generate", help="the app's streaming generate endpoint")
    p.add_argument("--repeats", type=int, default=5, help="generate requests timed")
    p.add_argument("--train-seconds", type=float, default=30.0, help="training time of each run")
    p.add_argument("--rounds", type=int, default=2, help="rounds of the two conditions (each round: both, in "
                                                          "alternating order)")
    p.add_argument("--autocast", default="none", choices=("none", "bf16", "auto"),
                   help="the precision both conditions train in")
    return p.parse_args(argv)


def verdict(ok: bool) -> str:
    return "MET" if ok else "NOT MET"


def main(argv=None) -> None:
    args = parse_args(argv)
    if not (ROOT / "app.py").exists():
        sys.exit("app.py does not exist yet; this benchmark needs it")
    from gradio_client import Client

    with tempfile.TemporaryDirectory() as tmp:
        checkpoints = Path(tmp)
        train_checkpoint(checkpoints, "bench-model")
        proc, start_s = start_app(free_port(), checkpoints)
        try:
            client = Client(f"http://127.0.0.1:{proc.port}/", verbose=False)
            request = dict(checkpoint="bench-model", prime="ROMEO:", temperature=0.8, length=500, top_k=0, seed=1)
            first, generated = first_output_ms(client, args.generate_api, request, args.repeats)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
        alone_rates, polled_rates, durations = [], [], []
        for i in range(args.rounds):
            for condition in ("alone", "polled") if i % 2 == 0 else ("polled", "alone"):
                name = f"bench-{condition}-{i}"
                if condition == "alone":
                    alone_rates.append(train_rate(checkpoints, name, args.train_seconds, args.autocast))
                else:
                    rate, took = polled_rate(checkpoints, name, args.train_seconds, args.autocast)
                    polled_rates.append(rate)
                    durations += took
        alone, polled = statistics.mean(alone_rates), statistics.mean(polled_rates)

    print("# app responsiveness")
    print(machine_line())
    print(f"command: python {' '.join(['-m', 'bench.app_latency', *sys.argv[1:]])}\n")
    print(f"start-up to page served: {start_s:.2f} s (target <= {TARGET_START_S:.0f} s: "
          f"{verdict(start_s <= TARGET_START_S)})")
    med_first, med_gen = statistics.median(first), statistics.median(generated)
    print(f"generate request ({args.generate_api}, 500 chars) to first streamed update: median {med_first:.0f} ms; "
          f"to first generated characters: median {med_gen:.0f} ms (min {min(generated):.0f}, "
          f"max {max(generated):.0f}, {len(generated)} requests; target <= {TARGET_FIRST_MS:.0f} ms: "
          f"{verdict(med_gen <= TARGET_FIRST_MS)})")
    slow = 1 - polled / alone
    print(f"\ntraining the long preset ({args.autocast} autocast), {args.rounds} x {args.train_seconds:.0f} s per "
          f"condition: alone {alone:,.0f} chars/s ({', '.join(f'{r:,.0f}' for r in alone_rates)}), with the UI's "
          f"poll {polled:,.0f} chars/s ({', '.join(f'{r:,.0f}' for r in polled_rates)})")
    if durations:
        print(f"({len(durations)} polls, median {statistics.median(durations) * 1000:.1f} ms, "
              f"max {max(durations) * 1000:.1f} ms each)")
    print(f"slowdown {slow:+.1%} (target <= {TARGET_SLOWDOWN:.0%}: {verdict(slow <= TARGET_SLOWDOWN)})")


if __name__ == "__main__":
    main()
