"""Where an absent record is a zero: the years (and types) a source reports completely.

A count with no record is 0 only where the source was looking. Its manifest may say so
(``[coverage]``: years, types; kept on the load run); without a declaration a type's covered years
are those in which the source recorded that type at least once anywhere. The declaration travels
with the layer's frame to the indicators, in ``frame.attrs["coverage"]``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import pandas as pd

from observatory.store import LoadRun

ATTRIBUTE = "coverage"
"""The key of a frame's ``attrs`` holding its declared coverage: (type or None, year) pairs."""
Pairs = frozenset[tuple[str | None, int]]


def declared(runs: Iterable[LoadRun], layer: str, *, partitioned: bool) -> Pairs | None:
    """The (type, year) pairs the layer's current sources declare (type None: every type), or
    None when one of them declares nothing. A partitioned layer holds the latest load of each
    manifest; any other layer, its latest load only."""
    own = [run for run in runs if run.layer == layer]
    if not own:
        return None
    current = list({run.manifest_file: run for run in own}.values()) if partitioned else own[-1:]
    pairs: set[tuple[str | None, int]] = set()
    for run in current:
        if not run.coverage:
            return None
        spec = json.loads(run.coverage)
        first, last = spec["years"]
        types: list[str | None] = spec.get("types") or [None]
        pairs.update((kind, year) for kind in types for year in range(first, last + 1))
    return frozenset(pairs)


def covered_years(records: pd.DataFrame, years: pd.Series, types: tuple[str, ...] | None) -> list[int]:
    """The years in which the source reports every one of ``types`` (None: it reports at all),
    from its declaration, else from the records themselves (``years``: each record's year)."""
    pairs = records.attrs.get(ATTRIBUTE)
    if pairs is None:
        kinds = records["type"] if "type" in records.columns else pd.Series(None, index=records.index)
        pairs = frozenset(zip(kinds, years.astype(int), strict=True))
    if types is None:
        return sorted({year for _, year in pairs})
    return sorted(
        {year for _, year in pairs}
        & set.intersection(*({y for kind, y in pairs if kind in (t, None)} for t in types))
    )
