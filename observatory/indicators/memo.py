"""Results kept for the rest of a compute run: the same input is asked for by several indicators on
both geographies (the 2024 one gets copies of the frames), so a result is keyed by what it depends
on, by content, and only the few newest are kept."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class BoundedMemo(Generic[T]):
    """At most ``size`` results, the oldest dropped first."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.entries: dict[Hashable, T] = {}

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        """The result for ``key``, computed (and kept) when it is not kept already."""
        if key not in self.entries:
            value = compute()
            while len(self.entries) >= self.size:
                del self.entries[next(iter(self.entries))]  # the oldest
            self.entries[key] = value
        return self.entries[key]
