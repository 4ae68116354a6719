"""The app's settings: where it reads and writes, and the limits it enforces, from the environment."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from charrnn.runs.store import PROJECT_DIR, default_root


@dataclass(frozen=True)
class Settings:
    """Everything the app is configured by; tests build one with ``Settings(root=tmp_path)``."""

    root: Path                                  # run directories (CHARRNN_CHECKPOINTS)
    bundled: Path = PROJECT_DIR / "checkpoints" / "shakespeare"   # the pretrained run shipped with the app
    data_dir: Path = PROJECT_DIR / "data"       # bundled corpora
    password: str | None = None                 # CHARRNN_TRAIN_PASSWORD: needed for Start / Stop / Resume when set
    max_corpus_bytes: int = 10 * 1024 * 1024    # uploaded or pasted text
    max_upload: str = "10mb"                    # launch(max_file_size=...): the server refuses bigger uploads
    max_params: int = 20_000_000                # models the app will train (2 shared CPU cores); the CLI has no cap
    max_batch_chars: int = 262_144              # batch size x sequence length, to keep a run's memory sane
    max_length: int = 5000                      # characters per generation
    max_prime: int = 10_000                     # characters of prime
    stream_seconds: float = 0.08                # between streamed updates: by time, so a long generation
                                                # never floods the page (an update per 8 characters did)
    plot_points: tuple[int, int] = (400, 100)   # most train and validation points drawn
    earlier_samples: int = 12                   # most earlier samples listed
    timeline_samples: int = 40                  # most samples in a reviewed run's timeline
    poll_seconds: float = 1.5
    # The trainer's torch threads: 0 = torch's default (every core), the CLI's policy too. Measured with
    # `python -m bench.app_training` (README): the app's run trains at the CLI's rate, and generation
    # meanwhile answers as fast as with a 1-thread trainer.
    trainer_threads: int = 0
    server_threads: int = 1                     # torch threads for generation: steps are tiny
    train_memory: int = 0                       # bytes a run may use; 0 = the machine's (or cgroup's) limit
    app_memory: int = 1 << 30                   # ... less this much, kept for the app and its visitors
    max_checkpoints_bytes: int = 5 << 30        # all runs together: a new run is refused past this
    max_pending: int = 8                        # events one visitor (address) may have waiting or running
    max_event_body: int = 64 << 10              # bytes of an event's request, unless it carries a pasted text
    visitor_minutes: float = 30.0               # with no password, a run (or a resumed part) trains at most this
                                                # long: one visitor cannot hold the one trainer (0 = no cap)
    max_inside_chars: int = 3000                # characters a unit's activations are computed over
    browser_dir: Path | None = None             # browser copies, the one folder served (default: root/.browser)
    max_browser_bytes: int = 32 << 20           # a bigger checkpoint is generated on the server only

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root).resolve())
        folder = Path(self.browser_dir).resolve() if self.browser_dir else self.root / ".browser"
        object.__setattr__(self, "browser_dir", folder)

    @property
    def max_read(self) -> int:
        """Most characters the next-character chart reads: a prime plus a generation."""
        return self.max_prime + self.max_length


def settings_from_env(env) -> Settings:
    return Settings(root=default_root(env), password=env.get("CHARRNN_TRAIN_PASSWORD") or None)
