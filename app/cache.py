"""A small process-level LRU cache of loaded models, shared by all sessions.

Sessions keep only the *key* of their model in `gr.State`; the weights live here, at most `size`
of them besides the pinned ones. A failed load raises and leaves the cache (and every session's
choice) as it was. Each entry has its own lock: one event at a time uses a given model, because
fast tokenizers and the attention switch used by the ABC method are not safe to share between
threads.

- Pinned keys (the bundled default models) are never evicted, so one visitor loading other models
  cannot take the defaults away from everyone else.
- Every load in the process, in every cache, holds one lock (`LOAD_LOCK`): transformers builds
  models under process-global patches (meta-device initialisation), and two loads at once in two
  threads can leave a model half-built ("Cannot copy out of meta tensor").
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from contextlib import contextmanager
from pathlib import Path

LOAD_LOCK = threading.RLock()  # one model load at a time in the whole process (see the module doc)


class ModelCache:
    """LRU of loaded models. `loader(key)` builds a model; `use(key)` yields it under its lock."""

    def __init__(self, loader: Callable, size: int, pinned: set | frozenset = frozenset()):
        if size < 1:
            raise ValueError("a model cache holds at least one model")
        self.loader, self.size, self.pinned = loader, size, set(pinned)
        self._items: OrderedDict = OrderedDict()  # key -> (model, lock)
        self._lock = threading.Lock()  # guards _items
        self._load_lock = LOAD_LOCK  # one load at a time (memory, and transformers' global patches)
        self.loading: set = set()  # keys being loaded right now
        self.errors: dict = {}  # key -> message of its last failed load

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._items

    def keys(self) -> list:
        with self._lock:
            return list(self._items)

    def _entry(self, key: Hashable):
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        return None

    def peek(self, key: Hashable):
        """The model if it is loaded, else None; never loads."""
        with self._lock:
            entry = self._items.get(key)
        return entry[0] if entry else None

    def get_entry(self, key: Hashable):
        """(model, lock) for `key`, loading it (and evicting the least recently used) if needed."""
        entry = self._entry(key)
        if entry is not None:
            return entry
        with self._load_lock:
            entry = self._entry(key)  # another thread may have loaded it meanwhile
            if entry is not None:
                return entry
            self.loading.add(key)
            try:
                model = self.loader(key)  # raises on failure: nothing else changes
            except Exception as err:
                self.errors[key] = str(err)
                raise
            finally:
                self.loading.discard(key)
            self.errors.pop(key, None)
            entry = (model, threading.Lock())
            with self._lock:
                self._items[key] = entry
                self._evict()
            return entry

    def _evict(self) -> None:
        """Drop least recently used unpinned models until at most `size` unpinned ones remain (caller holds _lock)."""
        unpinned = [k for k in self._items if k not in self.pinned]  # oldest first
        for k in unpinned[:max(0, len(unpinned) - self.size)]:
            del self._items[k]

    def get(self, key: Hashable):
        return self.get_entry(key)[0]

    @contextmanager
    def use(self, key: Hashable):
        """Load (if needed) and hold the model's lock while the caller uses it."""
        model, lock = self.get_entry(key)
        with lock:
            yield model


def is_local(name: str) -> bool:
    return Path(os.path.expanduser(name)).exists()


def hub_parameter_count(name: str) -> int | None:
    """Parameters of a hub model from its safetensors metadata (no weights downloaded); None if unknown."""
    from huggingface_hub.constants import is_offline_mode

    if is_local(name) or is_offline_mode():
        return None
    try:
        from huggingface_hub import get_safetensors_metadata

        meta = get_safetensors_metadata(name)
        return int(sum(meta.parameter_count.values()))
    except Exception:  # noqa: BLE001 - unknown size: let the loader give its own message
        return None
