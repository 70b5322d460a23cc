"""Fuzzing the loaders: generated broken CSV and GeoJSON files are loaded, or refused with a
LoadError that says why; never another exception, and never a changed store on refusal."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from etl import load_source, read_manifest
from layers import get_layer
from observatory.errors import LoadError
from observatory.settings import Settings
from observatory.store import Store
from tests import fixtures
from tests.fixtures import UTM, X0, Y0

FUZZ = hypothesis_settings(
    max_examples=25,
    deadline=None,
    database=None,  # nothing written beside the project
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
VALID_CSV = fixtures.permits_table().to_csv(index=False)
PIECES = [",", '"', "\n", "\r\n", "\x00", ";", "1e400", "-1e308", "9999-12-31", "NaN", "", "ñ", "\ufeff"]

# --- broken CSV: the fixture permits, cut, spliced and scribbled on -------------------------------

Edit = tuple[str, float, str]
edits = st.lists(
    st.tuples(
        st.sampled_from(["cut", "insert", "delete", "repeat_line"]),
        st.floats(min_value=0, max_value=1),
        st.one_of(st.sampled_from(PIECES), st.text(max_size=12)),
    ),
    min_size=1,
    max_size=4,
)


def broken_csv(text: str, changes: list[Edit]) -> str:
    for kind, where, piece in changes:
        at = int(where * len(text))
        if kind == "cut":
            text = text[:at]
        elif kind == "insert":
            text = text[:at] + piece + text[at:]
        elif kind == "delete":
            text = text[:at] + text[at + len(piece) + 1 :]
        else:
            lines = text.split("\n")
            line = min(int(where * len(lines)), len(lines) - 1)
            text = "\n".join([*lines[: line + 1], lines[line], *lines[line + 1 :]])
    return text


# --- broken GeoJSON: zones whose values and geometries are anything JSON can hold ----------------

LONLAT = gpd.GeoSeries([shapely.box(X0, Y0, X0 + 1_000, Y0 + 1_000)], crs=UTM).to_crs(4326)[0]
SQUARE = [list(point) for point in LONLAT.exterior.coords]
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.text(max_size=8),
    st.floats(allow_nan=False, allow_infinity=False), st.sampled_from(["COM", "IND", "Z1", ""]),
)  # fmt: skip
coordinates = st.one_of(
    st.just(SQUARE),
    st.lists(st.lists(st.floats(allow_nan=False, allow_infinity=False), max_size=4), max_size=5),
    st.just([[*p, 10.0, 3.0] for p in SQUARE]),  # XYZM positions
    st.just([SQUARE[0], SQUARE[2], SQUARE[1], SQUARE[3], SQUARE[0]]),  # a bow-tie
    st.just([]),
)
geometries = st.one_of(
    st.none(),
    coordinates.map(lambda ring: {"type": "Polygon", "coordinates": [ring]}),
    st.just({"type": "Point", "coordinates": SQUARE[0]}),
    st.just({"type": "LineString", "coordinates": SQUARE}),
    st.just({"type": "Polygon", "coordinates": "abc"}),
)
features = st.lists(
    st.fixed_dictionaries(
        {"type": st.just("Feature"), "geometry": geometries,
         "properties": st.fixed_dictionaries({"ZONA_ID": scalars, "COD_USO": scalars, "VERSION": scalars})}
    ),
    max_size=4,
)  # fmt: skip


def geojson_text(zones: list[dict[str, Any]], cut: float) -> str:
    """The zones as a FeatureCollection, its text cut at ``cut`` (1: whole)."""
    text = json.dumps({"type": "FeatureCollection", "features": zones}, allow_nan=False)
    return text[: max(1, math.ceil(cut * len(text)))]


# --- the property ---------------------------------------------------------------------------------


@pytest.fixture
def amss(store: Store, settings: Settings, sources: dict[str, Path]) -> Store:
    fixtures.load(store, "municipalities", sources["municipalities"], settings=settings)
    return store


def loaded_or_refused(store: Store, settings: Settings, layer: str, path: Path) -> None:
    """Load ``path``: a LoadError with a message is fine, if the store is as it was before."""
    before = {name: store.read_layer(get_layer(name)) for name in ("municipalities", "zoning", "permits")}
    runs = store.load_runs()
    manifest = read_manifest(fixtures.write_manifest(layer, path))
    try:
        load_source(store, manifest, settings=settings)
    except LoadError as error:
        assert str(path) in error.message or path.name in error.message
        assert "Traceback" not in error.message
        for name, frame in before.items():
            pd.testing.assert_frame_equal(store.read_layer(get_layer(name)), frame)
        assert store.load_runs() == runs


@FUZZ
@given(changes=edits)
def test_broken_csv(amss: Store, settings: Settings, tmp_path: Path, changes: list[Edit]) -> None:
    path = tmp_path / "permisos.csv"
    path.write_text(broken_csv(VALID_CSV, changes), encoding="utf-8")
    loaded_or_refused(amss, settings, "permits", path)


@FUZZ
@given(zones=features, cut=st.one_of(st.just(1.0), st.floats(min_value=0, max_value=1)))
def test_broken_geojson(
    amss: Store, settings: Settings, tmp_path: Path, zones: list[dict[str, Any]], cut: float
) -> None:
    path = tmp_path / "zonas.geojson"
    path.write_text(geojson_text(zones, cut), encoding="utf-8")
    loaded_or_refused(amss, settings, "zoning", path)
