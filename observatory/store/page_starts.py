"""What the server remembers of a query per layer version: how many rows it matches, and where
its pages begin (keyset pagination behind offset URLs).

A page at ``offset`` of a query ordered by id is the first ``limit`` rows from some id on. Each
page served tells where it begins and where the next one does (its last row, asked one past the
limit); a later page of the same query then seeks from the nearest start at or before its offset
through the id index instead of counting every row before it. Entries are keyed by the layer's
version (the version of the rows read, checked by the stores, not only the one in memory), so a
load or a recomputation leaves the old ones unreachable; both bounds keep the memory
small (a start is an id). The count beside every page (``numberMatched``) is likewise computed
once per query and version, not on every request."""

from __future__ import annotations

import bisect
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar, cast

if TYPE_CHECKING:
    from layers import Layer
    from observatory.store.base import FeatureQuery, LayerVersion

T = TypeVar("T")
QUERIES = 256
STARTS_PER_QUERY = 4096


def _bbox_only(layer: Layer, query: FeatureQuery) -> bool:
    """Whether a bounding box is the query's one condition, if it has any (its order aside)."""
    by_time = query.interval is not None and layer.datetime is not None
    return not query.filters and query.condition is None and not by_time


def page_key(layer: Layer, version: LayerVersion | None, query: FeatureQuery) -> Hashable | None:
    """The key of a query's page starts when its pages are in id order (no ``sortby``) of the
    whole layer or of a box of it; None for other queries, whose pages are found by OFFSET."""
    if query.sortby or version is None or not _bbox_only(layer, query):
        return None
    return (layer.name, version.tag, query.bbox)


def count_key(
    layer: Layer, version: LayerVersion | None, query: FeatureQuery, exact_up_to: int
) -> Hashable | None:
    """The key of a query's count (its order and page aside); None when it cannot have one."""
    if version is None:
        return None
    filters = tuple(sorted(query.filters.items()))
    key = (
        "count",
        layer.name,
        version.tag,
        query.bbox,
        filters,
        query.interval,
        query.condition,
        exact_up_to,
    )
    try:
        hash(key)
    except TypeError:  # a value of a filter that is not hashable: counted every time
        return None
    return key


_UNKNOWN = object()


@dataclass
class _Query:
    offsets: list[int] = field(default_factory=list)
    ids: list[Any] = field(default_factory=list)
    known: Any = _UNKNOWN


class PageStarts:
    def __init__(self, queries: int = QUERIES, starts_per_query: int = STARTS_PER_QUERY) -> None:
        self._queries: OrderedDict[Hashable, _Query] = OrderedDict()
        self._capacity = queries
        self._starts_per_query = starts_per_query
        self._lock = threading.Lock()

    def _entry(self, key: Hashable) -> _Query:
        entry = self._queries.get(key)
        if entry is None:
            entry = self._queries[key] = _Query()
            if len(self._queries) > self._capacity:
                self._queries.popitem(last=False)
        self._queries.move_to_end(key)
        return entry

    def nearest(self, key: Hashable, offset: int) -> tuple[int, Any]:
        """The known start at or before ``offset``: (its offset, its id), or (0, None)."""
        with self._lock:
            entry = self._entry(key)
            at = bisect.bisect_right(entry.offsets, offset) - 1
            return (entry.offsets[at], entry.ids[at]) if at >= 0 else (0, None)

    def remember(self, key: Hashable, offset: int, row_id: Any) -> None:
        """The row at ``offset`` of the query has id ``row_id``."""
        with self._lock:
            entry = self._entry(key)
            at = bisect.bisect_left(entry.offsets, offset)
            if at < len(entry.offsets) and entry.offsets[at] == offset:
                return
            if len(entry.offsets) >= self._starts_per_query:
                return
            entry.offsets.insert(at, offset)
            entry.ids.insert(at, row_id)

    def remembered(self, key: Hashable | None, compute: Callable[[], T]) -> T:
        """``compute()`` once per key (a count), then remembered; every time without a key."""
        if key is None:
            return compute()
        with self._lock:
            known = self._entry(key).known
        if known is _UNKNOWN:
            known = compute()
            with self._lock:
                self._entry(key).known = known
        return cast(T, known)
