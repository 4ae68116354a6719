"""The app's settings: where it reads and writes, and the limits it enforces, from the environment."""
from __future__ import annotations

import ipaddress
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
    browser_dir: Path | None = None             # browser copies, served by name (default: root/.browser)
    max_browser_bytes: int = 32 << 20           # a bigger checkpoint is generated on the server only
    # Proxies whose X-Forwarded-For the app believes (CHARRNN_TRUSTED_PROXIES: addresses or networks, comma-
    # separated): a request from one is counted for the right-most forwarded address that is not one of them (see
    # webui.fair); any other request for its socket's peer, whatever headers it sends. A Space sits behind the
    # Spaces proxy, which connects from a private address: there the default is SPACES_PROXIES, and a Space's
    # operator sets the variable to narrow or widen it. Elsewhere nothing is trusted unless set.
    trusted_proxies: tuple[str, ...] = ()
    # Start trains in the visitor's own GPU bursts (webui.train.burst), as on a ZeroGPU Space, where they are on
    # whatever this says: CHARRNN_GPU_BURSTS=1 runs that path here, on the CPU, to try it out or test it
    gpu_bursts: bool = False
    # What one visitor (an address, as webui.fair finds it) may take of a public server, so that nobody can fill its
    # disk or hold its one trainer (webui.quotas, webui.expiry, webui.turns, charrnn.runs.watchdog).
    visitor_upload_per_minute: int = 64 << 20   # bytes one visitor may upload a minute
    visitor_upload_kept: int = 256 << 20        # ... and have kept: Gradio keeps an upload up to upload_kept_s
    upload_kept_s: float = 7200.0               # webui.demo's delete_cache=(3600, 3600): an upload goes in 1-2 hours
    visitor_download_per_minute: int = 256 << 20    # bytes of files (downloads, browser copies) sent to one visitor
    max_download_bytes: int = 1 << 30           # downloads built and kept for reuse, all runs together
    download_reuse_s: float = 600.0             # a download handed out this recently is never removed for room
    visitor_runs: int = 10                      # runs one visitor may own (started or added), with no password set
    visitor_run_bytes: int = 1 << 30            # bytes those runs may take
    visitor_run_hours: float = 24.0             # a visitor's run untouched this long expires: it is removed, oldest
                                                # first, when the runs need room (the operator's, no owner.json, never)
    train_cooldown_minutes: float = 10.0        # after a visitor's run ends, whoever asked for the trainer meanwhile
                                                # goes first for this long (no password set)
    stall_minutes: float = 5.0                  # a trainer with no new files and no CPU time this long is ended
    watchdog_seconds: float = 30.0              # between the watchdog's looks

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root).resolve())
        folder = Path(self.browser_dir).resolve() if self.browser_dir else self.root / ".browser"
        object.__setattr__(self, "browser_dir", folder)
        object.__setattr__(self, "trusted_proxies", tuple(proxy_network(p) for p in self.trusted_proxies))

    @property
    def max_read(self) -> int:
        """Most characters the next-character chart reads: a prime plus a generation."""
        return self.max_prime + self.max_length


SPACES_PROXIES = "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,100.64.0.0/10,fc00::/7"    # private networks only


def settings_from_env(env) -> Settings:
    proxies = env.get("CHARRNN_TRUSTED_PROXIES", SPACES_PROXIES if env.get("SPACE_ID") else "")
    return Settings(root=default_root(env), password=env.get("CHARRNN_TRAIN_PASSWORD") or None,
                    trusted_proxies=tuple(p.strip() for p in proxies.split(",") if p.strip()),
                    gpu_bursts=env.get("CHARRNN_GPU_BURSTS") == "1")


def proxy_network(text: str) -> str:
    """One trusted proxy, as a network ("10.0.0.5" is 10.0.0.5/32); a clear error for anything else."""
    try:
        return str(ipaddress.ip_network(str(text).strip(), strict=False))
    except ValueError:
        raise ValueError(f"CHARRNN_TRUSTED_PROXIES: {text!r} is not an address or a network such as "
                         f"10.0.0.0/8; list them separated by commas") from None
