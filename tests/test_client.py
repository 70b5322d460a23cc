"""The analysts' Python API (observatory.client) on a local store and on a live server over the
same store, and its plotting helpers, on the published tiny AMSS (values in tests/fixtures.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import matplotlib
import pandas as pd
import pytest
from geopandas.testing import assert_geodataframe_equal
from matplotlib.axes import Axes

from observatory import plots
from observatory.client import NO_DATA, NoData, Observatory
from observatory.errors import InvalidParameter, StoreUnavailable
from observatory.settings import Settings
from observatory.store import Store, open_store
from tests.conftest import serving
from tests.fixtures import PERMITS_IN_WEST, UTM, WEST_SQUARE

matplotlib.use("Agg")
WITHHELD = "homicide_rate:0001:2017"


@pytest.fixture(scope="module")
def local(published: tuple[Store, Settings]) -> Iterator[Observatory]:
    with Observatory.open(published[1]) as observatory:
        yield observatory


@pytest.fixture(scope="module")
def remote(published_server: str) -> Iterator[Observatory]:
    with Observatory.open(published_server) as observatory:
        yield observatory


def same(left: gpd.GeoDataFrame, right: gpd.GeoDataFrame) -> None:
    assert_geodataframe_equal(left, right, check_less_precise=True)


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"period": 2017, "theme": ["density", "land_rent"]},
        {"indicator": "permits_count", "period": "all", "geography": "municipios_2024"},
        {"wide": True},
        {"wide": True, "period": 2017, "municipality": "0002"},
        {"wide": True, "period": "all", "geography": "municipios_2024"},
    ],
)
def test_local_and_remote_give_equal_indicator_frames(
    local: Observatory, remote: Observatory, query: dict[str, object]
) -> None:
    mine, theirs = local.indicators(**query), remote.indicators(**query)  # type: ignore[arg-type]
    assert len(mine) > 0
    if "value_id" in mine:  # the one deliberate difference: the server withholds, the store keeps
        mine, theirs = mine[mine["value_id"] != WITHHELD], theirs[theirs["value_id"] != WITHHELD]
    else:
        withheld = [column for column in mine.columns if column.startswith("homicide_rate")]
        mine, theirs = mine.drop(columns=withheld), theirs.drop(columns=withheld)
    same(mine.reset_index(drop=True), theirs.reset_index(drop=True))


def test_tidy_values_by_hand(local: Observatory, remote: Observatory) -> None:
    counts = local.indicators(indicator="permits_count", period="all").set_index("value_id")
    assert counts["value"].to_dict() == {
        "permits_count:0001:2017": 2.0, "permits_count:0001:2018": 1.0,
        "permits_count:0002:2017": 1.0, "permits_count:0002:2018": 0.0,
    }  # fmt: skip
    assert counts["title_es"].iloc[0] == local.sheet("permits_count")["title"]["es"]
    assert local.periods("population_density") == remote.periods("population_density") == [2007]
    wide = local.indicators(indicator=["permits_count", "population_density"], wide=True).set_index(
        "municipality_code"
    )
    assert wide.loc["0001", "permits_count"] == 1.0  # 2018, the latest year of permits
    assert wide.loc["0002", "population_density"] == pytest.approx(500.0)  # 2007, the census
    # Analysts see the withheld value; partners get it null and flagged.
    assert local.indicators(indicator="homicide_rate").set_index("value_id").loc[WITHHELD, "value"] == 20.0
    served = remote.indicators(indicator="homicide_rate").set_index("value_id").loc[WITHHELD]
    assert pd.isna(served["value"]) and served["flag"] == "suppressed"


def test_sheets_and_themes_agree(local: Observatory, remote: Observatory) -> None:
    pd.testing.assert_frame_equal(local.sheets(), remote.sheets())
    themes = local.themes()
    assert themes.index[0] == "services" and "permits_count" in themes.loc["urban_control", "indicators"]
    pd.testing.assert_frame_equal(themes, remote.themes())


def west_bbox() -> tuple[float, float, float, float]:
    """The west square's lon/lat bounds, shrunk by 10 m: it holds P1, P2 and P5 only."""
    west, south, east, north = gpd.GeoSeries([WEST_SQUARE.buffer(-10)], crs=UTM).to_crs(4326).total_bounds
    return (float(west), float(south), float(east), float(north))


def test_layers_with_bbox_agree(local: Observatory, remote: Observatory) -> None:
    same(local.layer("permits"), remote.layer("permits"))
    inside = local.layer("permits", bbox=west_bbox())
    assert set(inside["permit_id"]) == PERMITS_IN_WEST
    same(inside, remote.layer("permits", bbox=west_bbox()))
    assert inside["submitted"].dtype == "datetime64[ms]" and inside["floor_area_m2"].dtype == "float64"


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("submitted >= DATE('2017-03-01') AND kind = 'permiso_construccion'", ["P2", "P5"]),
        ("floor_area_m2 > 60", ["P1", "P2", "P5"]),  # P4 has none: it does not match
        ("use_class IN ('industria', 'otros') OR investment_usd = 700", ["P3", "P4", "P5"]),
    ],
)
def test_cql2_filters_locally_and_remotely(
    local: Observatory, remote: Observatory, expression: str, expected: list[str]
) -> None:
    here = local.layer("permits", filter=expression)
    assert here["permit_id"].tolist() == expected
    same(here, remote.layer("permits", filter=expression))


def test_clear_errors(local: Observatory, remote: Observatory, tmp_path: Path) -> None:
    with pytest.raises(NoData, match=re.escape(NO_DATA)):
        Observatory.open(tmp_path / "nowhere")
    empty = Settings(data_dir=tmp_path / "empty")
    open_store(empty).close()
    with Observatory.open(empty) as nothing, pytest.raises(NoData, match="run `observatory demo`"):
        nothing.indicators()
    with (
        serving(None, empty) as url,
        Observatory.open(url) as far,
        pytest.raises(NoData, match=re.escape(NO_DATA)),
    ):
        far.indicators()
    for observatory in (local, remote):
        with pytest.raises(InvalidParameter, match="unknown indicator_id 'nope'"):
            observatory.indicators(indicator="nope")
    for observatory in (local, remote):
        with pytest.raises(InvalidParameter, match="unknown property 'colour'"):
            observatory.layer("permits", filter="colour = 'red'")
    with Observatory.open("http://127.0.0.1:9") as unreachable, pytest.raises(StoreUnavailable):
        unreachable.sheets()


def test_plots(local: Observatory) -> None:
    density = local.indicators(indicator="population_density")
    axes = plots.choropleth(density)
    assert isinstance(axes, Axes) and "2007" in axes.get_title()
    html = plots.choropleth(density, interactive=True).get_root().render()
    assert "L.map(" in html and "Oeste" in html
    assert not re.search(r"<(script|link)[^>]+(src|href)=\"https?://", html)  # works offline
    ranked = plots.ranking(density)
    assert [label.get_text() for label in ranked.get_yticklabels()] == ["Este", "Oeste"]  # highest on top
    series = plots.time_series(local.indicators(indicator="permits_count", period="all"))
    assert len(series.get_lines()) == 2 and list(series.get_lines()[0].get_xdata()) == [2017, 2018]
    with pytest.raises(InvalidParameter, match="several indicators"):
        plots.ranking(local.indicators(period=2017))
