"""What every benchmark shares: the project folder, a --threads flag, and the line naming the machine.

A figure means little without the machine it came from, so every bench prints ``machine_line()``:
CPU model, cores, torch version and threads (and the GPU, where there is one).
"""
from __future__ import annotations

import argparse
import os
import platform
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def add_threads_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")


def apply_threads(threads: int) -> None:
    import torch

    if threads:
        torch.set_num_threads(threads)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_line() -> str:
    """'machine: <CPU model>, <n> cores, torch <version>, <t> threads[, GPU <name>]'."""
    import torch

    gpu = f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"machine: {cpu_model()}, {cores} cores, torch {torch.__version__}, {torch.get_num_threads()} threads{gpu}"
