"""What every handler of the app shares, passed as one object instead of module globals."""
from __future__ import annotations

from dataclasses import dataclass, field

from charrnn.runs.jobs import Supervisor
from webui.lru import LRU
from webui.models import ModelCache
from webui.owners import WrongKeys
from webui.settings import Settings
from webui.turns import Turns


@dataclass
class AppContext:
    settings: Settings
    jobs: Supervisor = None
    models: ModelCache = field(default_factory=lambda: ModelCache(size=4))
    logits: LRU = field(default_factory=lambda: LRU(64))        # next-character logits per (checkpoint, text read)
    activations: LRU = field(default_factory=lambda: LRU(6))    # a layer's (T, H) values per (checkpoint, text)
    copies: dict = field(default_factory=dict)                  # (file, mtime, size) -> its browser copy's digest
    readers: LRU = field(default_factory=lambda: LRU(8))        # run -> the reader following its metrics.jsonl
    turns: Turns = None                                         # whose turn the one trainer is (webui.turns)
    wrong_keys: WrongKeys = field(default_factory=WrongKeys)    # failed ownership checks per visitor (webui.owners)
    # Delete not offered for a run with another owner, per visitor (webui.generate.tab): generous for browsing
    # others' runs, and no way to guess a key by asking whether Delete would be offered
    not_offered: WrongKeys = field(default_factory=lambda: WrongKeys(most=300, window_s=3600.0))

    def __post_init__(self):
        if self.jobs is None:
            self.jobs = Supervisor(self.settings.root, threads=self.settings.trainer_threads)
        if self.turns is None:
            self.turns = Turns(cooldown_s=60 * self.settings.train_cooldown_minutes)
