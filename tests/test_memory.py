"""The memory estimate a run is refused by: an upper bound of what a trainer really takes, and the limit."""
import json
import subprocess
import sys

from charrnn.config import ModelConfig, TrainConfig
from charrnn.runs.memory import estimate_peak_bytes, machine_memory, memory_limit
from charrnn.runs.store import PROJECT_DIR


def configs(hidden=256, layers=1, batch=16, seq_len=64):
    return (ModelConfig(vocab_size=65, embed=64, hidden=hidden, layers=layers),
            TrainConfig(batch_size=batch, seq_len=seq_len, iterations=3))


def test_the_estimate_bounds_a_measured_trainer_peak_without_being_loose():
    out = subprocess.run([sys.executable, "-m", "bench.memory", "--child", "256", "1", "128", "64", "65", "64"],
                         cwd=PROJECT_DIR, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    measured = json.loads(out.stdout.strip().splitlines()[-1])
    assert measured["peak"] <= measured["estimate"] <= 1.5 * measured["peak"]


def test_the_estimate_grows_with_batch_sequence_hidden_and_layers():
    small = estimate_peak_bytes(*configs())
    for bigger in (dict(batch=64), dict(seq_len=256), dict(hidden=1024), dict(layers=3)):
        assert estimate_peak_bytes(*configs(**bigger)) > small
    # activations dominate a big batch: 4,096 x 64 characters of hidden 2,195 need gigabytes
    assert estimate_peak_bytes(*configs(hidden=2195, batch=4096, seq_len=64)) > 8 * 2**30


def test_the_limit_is_the_machines_memory_or_less():
    assert 0 < memory_limit() <= machine_memory()
