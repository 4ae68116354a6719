"""A bounded, thread-safe least-recently-used store of computed values (loaded models, logits, activations)."""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable


class LRU:
    """At most ``size`` values; ``get`` computes a missing one outside the lock (two threads may both compute it)."""

    def __init__(self, size: int):
        self.size, self.items, self.lock = size, OrderedDict(), threading.Lock()

    def get(self, key: Hashable, compute: Callable[[], object]):
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
        value = compute()
        self.put(key, value)
        return value

    def put(self, key: Hashable, value) -> None:
        with self.lock:
            self.items[key] = value
            self.items.move_to_end(key)
            while len(self.items) > self.size:
                self.items.popitem(last=False)

    def discard(self, keep: Callable[[Hashable], bool]) -> None:
        """Drop every entry whose key ``keep`` refuses."""
        with self.lock:
            for key in [k for k in self.items if not keep(k)]:
                del self.items[key]

    def __len__(self) -> int:
        return len(self.items)
