"""Fixed registries whose entries may name one of rlkit's own classes by import path, imported only once a config
picks it: a CartPole run never loads Atari's wrappers, frame replay or the prioritized sampler."""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import Generic, TypeVar

T = TypeVar("T")


class LazyRegistry(Mapping[str, T], Generic[T]):
    """name -> entry; an entry written as "rlkit.module:attribute" is imported when first looked up. The paths are
    this installation's code, fixed here: a name read from a run folder only picks one of them."""

    def __init__(self, entries: Mapping[str, T | str]) -> None:
        self._entries = dict(entries)

    def __getitem__(self, name: str) -> T:
        entry = self._entries[name]
        if isinstance(entry, str):
            module, _, attribute = entry.partition(":")
            entry = self._entries[name] = getattr(importlib.import_module(module), attribute)
        return entry

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)
