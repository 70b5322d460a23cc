"""Disclosure control: which values public outputs withhold, decided in one place.

Counts of people and events (homicide victims above all) are withheld when small, so that no one
can be singled out, and a withheld count must not come back from anything else that is published.
The indicators computed from such counts (``disclosure="counts"`` in the registry) are protected
here, each year on its own, over every value published together:

- primary suppression: a count of 1 to ``threshold`` − 1 records is withheld (a zero points at no
  one and is published);
- complementary suppression: the 2024 municipalities are sums of their districts, and the
  metropolitan total is the sum of either geography (taken as known: other published values give
  it away), so wherever a relation would leave one withheld count alone, another is withheld too;
  a count that is part of another (homicides among all incidents) is at most its whole;
- audit: a linear program plays the outsider on those relations, knowing that every withheld count
  is at least 1, and finds each withheld count's smallest and largest possible value; where they are
  less than one record apart, one more count is withheld, until none is pinned.

Indicators derived from protected counts (smoothed rates, the composite index: ``"derived"``) are
computed from the published values only (``public_frame``), so nothing withheld can be solved for
from them, and a withheld value is served as null with its count, flagged ``suppressed``, by the
layer's ``withheld`` rule, in every output, and never used to filter or sort. Exact incident points
are a restricted layer; the public see them counted on hexagons (``incident_cells``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
from scipy.optimize import linprog

from layers import Layer
from observatory.h3grid import hexagons

SUPPRESSED = "suppressed"
"""The flag of a withheld value, stored and served."""
PINNED = 1.0
"""A withheld count whose possible values span less than this is as good as published."""


def protect(
    values: pd.DataFrame,
    *,
    crosswalk: Mapping[str, str | None],
    geographies: tuple[str, str],
    threshold: int,
    parts: Mapping[str, str] | None = None,
) -> pd.Series:
    """Which rows of ``values`` public outputs withhold (a boolean Series on its index).

    ``values`` holds computed rows of count indicators (``indicator_id``, ``geography``,
    ``municipality_code``, ``period``, ``n``); ``crosswalk`` maps each district (a code of the first
    of ``geographies``) to its municipality in the second (None: no second geography); ``parts``
    maps an indicator to the one whose records include its own (homicides among all incidents:
    the parts of a unit add up to at most the whole). Rows are protected per period, every
    indicator and both geographies together; rows of neither (the metropolitan total) are not
    withheld.
    """
    withheld = pd.Series(False, index=values.index)
    for _, rows in values.groupby("period", sort=False):
        table = _Table(rows, crosswalk, geographies, parts or {})
        withheld[rows.index] = table.protect(threshold)
    return withheld


@dataclass(frozen=True)
class _Relation:
    """``sum(sign * count) == constant`` over some cells (``<=`` when not ``equal``)."""

    cells: tuple[int, ...]
    signs: tuple[float, ...]
    constant: float
    equal: bool


class _Table:
    """The counts of one year, every indicator on both geographies, and the relations that tie
    them: a 2024 municipality is the sum of its districts, the metropolitan total the sum of either
    geography (taken as known whenever every district has a count), and a part at most its whole.

    A cell is an (indicator, geography, code) unit; one without a row is unknown to an outsider (a
    variable with no published value).
    """

    def __init__(
        self,
        rows: pd.DataFrame,
        crosswalk: Mapping[str, str | None],
        geographies: tuple[str, str],
        parts: Mapping[str, str],
    ) -> None:
        older, newer = geographies
        districts = sorted(crosswalk)
        parents = sorted({code for code in crosswalk.values() if code is not None})
        indicators = sorted(set(rows["indicator_id"]))
        places = [(older, code) for code in districts] + [(newer, code) for code in parents]
        units = [(i, *place) for i in indicators for place in places]
        index = {unit: n for n, unit in enumerate(units)}
        keys = list(
            zip(
                rows["indicator_id"],
                rows["geography"].astype(str),
                rows["municipality_code"].astype(str),
                strict=True,
            )
        )
        self.row_cells = np.array([index.get(key, -1) for key in keys])
        counts = np.full(len(index), np.nan)
        for cell, n in zip(self.row_cells, pd.to_numeric(rows["n"], errors="coerce"), strict=True):
            if cell >= 0:
                counts[cell] = n
        self.known = ~np.isnan(counts)
        self.counts = np.nan_to_num(counts)
        self.relations: list[_Relation] = []
        for i in indicators:
            for parent in parents:
                members = [index[(i, older, code)] for code in districts if crosswalk[code] == parent]
                cells = (*members, index[(i, newer, parent)])
                self.relations.append(_Relation(cells, (1.0,) * len(members) + (-1.0,), 0.0, True))
            old = [index[(i, older, code)] for code in districts]
            if self.known[old].all():
                total = float(self.counts[old].sum())
                for geography, codes in ((older, districts), (newer, parents)):
                    cells = tuple(index[(i, geography, code)] for code in codes)
                    self.relations.append(_Relation(cells, (1.0,) * len(cells), total, True))
        for whole in {parts[i] for i in indicators if parts.get(i) in indicators}:
            members = [i for i in indicators if parts.get(i) == whole]
            for place in places:
                cells = (*(index[(i, *place)] for i in members), index[(whole, *place)])
                self.relations.append(_Relation(cells, (1.0,) * len(members) + (-1.0,), 0.0, False))

    def protect(self, threshold: int) -> np.ndarray:
        """The withheld rows: primary, then complementary until no withheld count is pinned."""
        suppressed = self.known & (self.counts >= 1) & (self.counts < threshold)
        while True:
            self._complete(suppressed)
            pinned = self._pinned(suppressed)
            if pinned is None:
                return np.array([cell >= 0 and suppressed[cell] for cell in self.row_cells], dtype=bool)
            extra = self._partner(pinned, suppressed)
            if extra is None:  # nothing left to withhold beside it: withhold every count
                suppressed[self.known] = True
                return np.array([cell >= 0 for cell in self.row_cells], dtype=bool)
            suppressed[extra] = True

    def _complete(self, suppressed: np.ndarray) -> None:
        """Withhold partners until no sum has exactly one hidden term, a withheld one (its value
        would be the other terms')."""
        changed = True
        while changed:
            changed = False
            for relation in self.relations:
                hidden = [c for c in relation.cells if suppressed[c] or not self.known[c]]
                if relation.equal and len(hidden) == 1 and suppressed[hidden[0]]:
                    extra = self._smallest(relation.cells, suppressed)
                    if extra is not None:
                        suppressed[extra] = changed = True

    def _smallest(self, cells: Iterable[int], suppressed: np.ndarray) -> int | None:
        """The published count of at least one record with the fewest records among ``cells``."""
        candidates = [c for c in cells if self.known[c] and not suppressed[c] and self.counts[c] >= 1]
        return min(candidates, key=lambda c: (self.counts[c], c)) if candidates else None

    def _partner(self, cell: int, suppressed: np.ndarray) -> int | None:
        """Another count to withhold beside a pinned one: the smallest in a relation it is in."""
        for relation in self.relations:
            if cell in relation.cells and (extra := self._smallest(relation.cells, suppressed)) is not None:
                return extra
        return None

    def _pinned(self, suppressed: np.ndarray) -> int | None:
        """A withheld count an outsider can determine from the published ones (knowing that each
        withheld count is at least 1), or None: the linear program's bounds of each."""
        hidden = [c for c in range(len(self.counts)) if suppressed[c] or not self.known[c]]
        column = {c: i for i, c in enumerate(hidden)}
        systems: dict[bool, tuple[list[np.ndarray], list[float]]] = {True: ([], []), False: ([], [])}
        for relation in self.relations:
            row, constant = np.zeros(len(hidden)), relation.constant
            for cell, sign in zip(relation.cells, relation.signs, strict=True):
                if cell in column:
                    row[column[cell]] += sign
                else:
                    constant -= sign * self.counts[cell]
            if row.any():
                systems[relation.equal][0].append(row)
                systems[relation.equal][1].append(constant)
        if not (systems[True][0] or systems[False][0]):
            return None
        matrices = {
            "A_eq": np.array(systems[True][0]) if systems[True][0] else None,
            "b_eq": systems[True][1] or None,
            "A_ub": np.array(systems[False][0]) if systems[False][0] else None,
            "b_ub": systems[False][1] or None,
        }
        bounds = [(1.0 if suppressed[c] else 0.0, None) for c in hidden]
        for c in hidden:
            if suppressed[c]:
                objective = np.zeros(len(hidden))
                objective[column[c]] = 1.0
                low = linprog(objective, bounds=bounds, method="highs", **matrices)
                high = linprog(-objective, bounds=bounds, method="highs", **matrices)
                if low.status == 0 and high.status == 0 and -high.fun - low.fun < PINNED:
                    return c
        return None


def public_frame(layer: Layer, frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """A layer's rows as the public see them: the values its ``withheld`` rule names are null (what
    every public output serves, and what derived indicators are computed from)."""
    if layer.withheld is None or frame.empty:
        return frame
    return gpd.GeoDataFrame(layer.withheld.public_frame(frame), geometry=frame.geometry.name, crs=frame.crs)


def incident_cells(
    incidents: gpd.GeoDataFrame, *, cells: np.ndarray, threshold: int, hidden_groups: set[tuple[str, int]]
) -> gpd.GeoDataFrame:
    """Incidents of every type counted on H3 hexagons per municipality and year, as the public see them.

    A cell is published when it holds at least ``threshold`` incidents, and a group (municipality,
    year) publishes cells only while at least ``threshold`` of its incidents stay in cells it does
    not publish (the smallest published cells are dropped until they do): the published cells then
    never add up to within ``threshold`` of a group's count, so they cannot pin a withheld one.
    Groups in ``hidden_groups`` (whose count of every incident is withheld) publish no cell at all.
    Types are not told apart: a cell's types would be counts of their own, small ones among them.
    ``cells`` holds the H3 cell of each incident.
    """
    group = ["municipality_code", "year"]
    frame = pd.DataFrame(
        {
            "h3_cell": cells,
            "municipality_code": incidents["municipality_code"].astype(str).to_numpy(),
            "year": pd.to_datetime(incidents["date"]).dt.year.to_numpy(),
        }
    )
    counted = frame.groupby(["h3_cell", *group], sort=True).size().rename("incidents").reset_index()
    kept = []
    for (code, year), of_group in counted.groupby(group, sort=True):
        if (code, int(year)) in hidden_groups:
            continue
        published = of_group[of_group["incidents"] >= threshold].sort_values("incidents", ascending=False)
        total = int(of_group["incidents"].sum())
        while not published.empty and total - int(published["incidents"].sum()) < threshold:
            published = published.iloc[:-1]
        kept.append(published)
    chosen = pd.concat(kept, ignore_index=True) if kept else counted.iloc[0:0]
    chosen["cell_id"] = (
        chosen["h3_cell"] + ":" + chosen["municipality_code"] + ":" + chosen["year"].astype(str)
    )
    return gpd.GeoDataFrame(chosen, geometry=hexagons(chosen["h3_cell"]), crs="EPSG:4326")
