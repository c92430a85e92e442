"""The Whisper models a worker keeps loaded between jobs: at most a few, least recently used
freed first (--max-models). Each task may pick its model, so a cache that kept everything
would only grow, by hundreds of MB to GBs a model."""

from __future__ import annotations

import gc
import logging
import sys
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

log = logging.getLogger(__name__)


class ModelCache:
    def __init__(self) -> None:
        # Least recently used first.
        self._models: OrderedDict[Hashable, Any] = OrderedDict()

    def __contains__(self, key: Hashable) -> bool:
        return key in self._models

    def keys(self) -> list[Hashable]:
        """Least recently used first."""
        return list(self._models)

    def get(self, key: Hashable, load: Callable[[], Any], most: int) -> Any:
        """The model under `key`, loaded by `load` when it is not held; keeps at most `most`."""
        if key in self._models:
            self._models.move_to_end(key)
            return self._models[key]
        # Freed before the load, not after: the old and the new model side by side may not fit.
        self.trim(most - 1)
        model = load()
        self._models[key] = model
        return model

    def trim(self, keep: int) -> None:
        """Free the least recently used models until at most `keep` remain."""
        if len(self._models) <= keep:
            return
        while len(self._models) > max(keep, 0):
            key, _model = self._models.popitem(last=False)
            log.info("Freeing the model %s (more than --max-models loaded)", key)
        del _model
        release_memory()


def release_memory() -> None:
    """Give a dropped model's memory back: a collection frees cycles that still hold it, and
    torch's CUDA allocator keeps freed blocks for itself until asked to return them."""
    gc.collect()
    torch = sys.modules.get("torch")  # never imported only for this
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
