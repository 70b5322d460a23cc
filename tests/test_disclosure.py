"""Disclosure control by hand: which counts are withheld (primary, complementary, pinned by the
outsider's linear program) and which incident cells are published, on tables small enough to
check every relation on paper."""

from __future__ import annotations

import geopandas as gpd
import h3
import pandas as pd
import pytest
import shapely

from observatory.disclosure import incident_cells, protect
from observatory.indicators.hotspots import point_cells

GEOGRAPHIES = ("old", "new")


def table(counts_old: dict[str, int], counts_new: dict[str, int]) -> pd.DataFrame:
    rows = [("old", code, n) for code, n in counts_old.items()] + [
        ("new", code, n) for code, n in counts_new.items()
    ]
    return pd.DataFrame(
        {
            "indicator_id": "homicide_rate",
            "period": 2020,
            "geography": [g for g, _, _ in rows],
            "municipality_code": [c for _, c, _ in rows],
            "n": [n for *_, n in rows],
        }
    )


def withheld(frame: pd.DataFrame, crosswalk: dict[str, str | None]) -> set[str]:
    mask = protect(frame, crosswalk=crosswalk, geographies=GEOGRAPHIES, threshold=5)
    return set(frame.loc[mask, "municipality_code"])


def test_primary_suppression_withholds_one_to_four_and_publishes_zero_and_five() -> None:
    # Each district alone in its 2024 municipality would give it away: no 2024 geography here.
    frame = table({"a": 0, "b": 1, "c": 4, "d": 5, "e": 40, "f": 30}, {})
    hidden = withheld(frame, dict.fromkeys("abcdef"))
    # b and c are withheld; the total (80) is known, but two withheld counts share what is left.
    assert hidden == {"b", "c"}


def test_a_lone_withheld_district_takes_the_smallest_sibling_with_it() -> None:
    frame = table({"a": 3, "b": 7, "c": 20, "d": 9, "e": 12}, {"M": 30, "N": 21})
    hidden = withheld(frame, {"a": "M", "b": "M", "c": "M", "d": "N", "e": "N"})
    # M (30) - b (7) - c (20) would be a's 3: b, the smallest published sibling, goes too. The
    # metropolitan total (51) = M + N then has nothing withheld: N's districts stay published.
    assert hidden == {"a", "b"}


def test_a_district_alone_in_its_municipality_takes_the_municipality_with_it() -> None:
    frame = table({"a": 2, "b": 8, "c": 9}, {"M": 2, "N": 17})
    hidden = withheld(frame, {"a": "M", "b": "N", "c": "N"})
    # M is a's count again; then M + N is the known total 19, so N goes, and then b (N = b + c).
    assert hidden == {"a", "M", "N", "b"}


def test_counts_pinned_by_the_outsiders_lower_bounds_take_a_third_with_them() -> None:
    frame = table({"a": 1, "b": 1, "c": 30, "d": 25}, {"M": 32, "N": 25})
    hidden = withheld(frame, {"a": "M", "b": "M", "c": "M", "d": "N"})
    # a + b = M - c = 2, and a withheld count is at least 1: both are 1. Withholding c as well
    # leaves a anywhere from 1 to 30. (d alone in N is published: it is N's published count.)
    assert hidden == {"a", "b", "c"}


def test_tables_are_protected_per_indicator_and_year() -> None:
    first = table({"a": 3, "b": 7}, {"M": 10})
    second = table({"a": 6, "b": 7}, {"M": 13}).assign(period=2021)
    frame = pd.concat([first, second], ignore_index=True)
    mask = protect(frame, crosswalk={"a": "M", "b": "M"}, geographies=GEOGRAPHIES, threshold=5)
    assert mask.tolist() == [True, True, False, False, False, False]


def hexagon_points(
    cell: str, count: int, *, code: str, year: int, kind: str = "robo"
) -> list[dict[str, object]]:
    lat, lon = h3.cell_to_latlng(cell)
    point = shapely.Point(lon, lat)
    return [
        {"municipality_code": code, "date": pd.Timestamp(year, 3, 1), "type": kind, "geom": point}
    ] * count


CENTRE = h3.latlng_to_cell(13.70, -89.20, 8)
RING = sorted(h3.grid_ring(CENTRE, 1))


def published_cells(
    rows: list[dict[str, object]], *, threshold: int = 5, hidden: set[tuple[str, int]] | None = None
) -> dict[tuple[str, str, int], int]:
    incidents = gpd.GeoDataFrame(rows, geometry="geom", crs="EPSG:4326")
    cells = incident_cells(
        incidents, cells=point_cells(incidents.geometry), threshold=threshold, hidden_groups=hidden or set()
    )
    return {
        (c, code, year): n
        for c, code, year, n in cells[["h3_cell", "municipality_code", "year", "incidents"]].itertuples(
            index=False
        )
    }


def test_incident_cells_keep_a_threshold_of_each_group_unpublished() -> None:
    rows = (
        hexagon_points(CENTRE, 4, code="a", year=2020)
        + hexagon_points(CENTRE, 2, code="a", year=2020, kind="lesiones")  # types together: 6
        + hexagon_points(RING[0], 5, code="a", year=2020)
        + hexagon_points(RING[1], 2, code="a", year=2020)
        + hexagon_points(CENTRE, 7, code="b", year=2020)  # all of b's in one cell
        + hexagon_points(CENTRE, 9, code="a", year=2021)
        + hexagon_points(RING[2], 8, code="a", year=2021)
        + hexagon_points(CENTRE, 12, code="c", year=2020)
        + hexagon_points(RING[3], 4, code="c", year=2020)
    )
    # a 2020: 13 in cells of 6, 5 and 2; publishing 6 and 5 would leave 2 (< 5) unpublished, so
    # the 5 goes too. b: its 7 all in one cell would publish b's count: none. a 2021: hidden (its
    # count is withheld). c: 12 and 4, only 4 left unpublished: none.
    assert published_cells(rows, hidden={("a", 2021)}) == {(CENTRE, "a", 2020): 6}
    incidents = gpd.GeoDataFrame(rows, geometry="geom", crs="EPSG:4326")
    cells = incident_cells(
        incidents, cells=point_cells(incidents.geometry), threshold=5, hidden_groups={("a", 2021)}
    )
    assert cells.geometry.iloc[0].equals_exact(
        shapely.Polygon([(lon, lat) for lat, lon in h3.cell_to_boundary(CENTRE)]), 1e-12
    )
    assert cells["cell_id"].tolist() == [f"{CENTRE}:a:2020"]
    # Without the hiding, a 2021 publishes its 9 (8 stay unpublished).
    assert published_cells(rows)[(CENTRE, "a", 2021)] == 9


@pytest.mark.parametrize("threshold", [5, 6])
def test_incident_cells_follow_the_threshold(threshold: int) -> None:
    rows = hexagon_points(CENTRE, 5, code="a", year=2020) + hexagon_points(RING[0], 6, code="a", year=2020)
    # 5 then 6: with a threshold of 5 the 6 is published and the 5 left unpublished; with 6 the 5
    # cannot be published and publishing the 6 would leave 5 (< 6) unpublished.
    expected = {(RING[0], "a", 2020): 6} if threshold == 5 else {}
    assert published_cells(rows, threshold=threshold) == expected


def test_a_part_is_at_most_its_whole_and_the_program_knows_it() -> None:
    def rows(indicator: str, counts: dict[str, int]) -> list[dict[str, object]]:
        return [
            {"indicator_id": indicator, "period": 2020, "geography": "old", "municipality_code": code, "n": n}
            for code, n in counts.items()
        ]

    frame = pd.DataFrame(
        rows("homicides", {"a": 1, "b": 20, "c": 30})
        + rows("incidents", {"a": 6, "b": 40, "c": 50})
        + rows("robberies", {"a": 5, "b": 20, "c": 20})
    )

    def hidden(parts: dict[str, str]) -> set[tuple[str, str]]:
        mask = protect(
            frame, crosswalk=dict.fromkeys("abc"), geographies=GEOGRAPHIES, threshold=5, parts=parts
        )
        return set(zip(frame.loc[mask, "indicator_id"], frame.loc[mask, "municipality_code"], strict=True))

    # Counts alone: a's 1 homicide and b's 20 beside it (the total, 51, is known).
    assert hidden({}) == {("homicides", "a"), ("homicides", "b")}
    # But homicides are among the incidents: a's are at most 6 - 5 robberies = 1, so pinned; a's
    # robberies go, then b's (the robberies' total); then c's homicides are at most 50 - 20 = 30
    # and at least 51 - (6 + 40 - 25) = 30: c's robberies go too.
    parts = {"homicides": "incidents", "robberies": "incidents"}
    assert hidden(parts) == {(kind, code) for kind in ("homicides", "robberies") for code in "abc"}
