"""The sample's streets and public transport: their shape, their determinism, and the committed
files loading through their manifests."""

from __future__ import annotations

import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from etl import load_source, read_manifest
from layers import get_layer
from observatory.sample import MANIFESTS_DIR, SampleFiles, write_sample
from observatory.sample.geometry import centre_metric
from observatory.sample.streets import ONEWAY_RADIUS_M
from observatory.settings import METRIC_CRS, Settings
from observatory.store import Store


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> SampleFiles:
    return write_sample(tmp_path_factory.mktemp("small"), street_segments=3_000, bus_routes=6)


def test_streets_are_denser_near_the_centre(small: SampleFiles) -> None:
    streets = gpd.read_file(small.streets).to_crs(METRIC_CRS)
    assert 2_400 <= len(streets) <= 3_600
    from_centre = shapely.distance(streets.geometry.values, centre_metric())
    lengths = streets.length.to_numpy()
    assert np.median(lengths[from_centre < 3_000]) < np.median(lengths[from_centre > 8_000]) / 2
    assert {"primary", "secondary", "residential", "footway"} <= set(streets["highway"])
    assert (from_centre[streets["oneway"] == "yes"] < ONEWAY_RADIUS_M).all()
    assert set(streets["oneway"]) == {"yes", "no"}


def test_transit_files(small: SampleFiles) -> None:
    with zipfile.ZipFile(small.gtfs) as feed:
        assert set(feed.namelist()) == {"agency.txt", "routes.txt", "trips.txt", "shapes.txt", "stops.txt"}
        trips = pd.read_csv(feed.open("trips.txt"))
    assert len(trips) == 12 and trips["shape_id"].nunique() == 12  # two directions of six routes
    traced = gpd.read_file(small.microbus_routes)
    assert set(traced.geom_type) == {"GeometryCollection", "LineString"}


def test_same_seed_same_transit(small: SampleFiles, tmp_path: Path) -> None:
    again = write_sample(tmp_path, street_segments=3_000, bus_routes=6)
    assert again.gtfs.read_bytes() == small.gtfs.read_bytes()
    assert again.microbus_routes.read_bytes() == small.microbus_routes.read_bytes()


def test_committed_sample_loads(store: Store, settings: Settings) -> None:
    for name in ["municipios", "calles_osm", "gtfs_paradas", "gtfs_rutas", "rutas_microbus"]:
        result = load_source(store, read_manifest(MANIFESTS_DIR / f"{name}.toml"), settings=settings)
        assert name == "municipios" or result.run.rows_rejected == 0
    stops = store.read_layer(get_layer("transit_stops"))
    codes = store.read_layer(get_layer("municipalities"))["code"]
    per_municipality = stops["municipality_code"].value_counts().reindex(codes, fill_value=0)
    assert len(stops) > 500 and per_municipality.min() < per_municipality.max() / 10  # some get few
    routes = store.read_layer(get_layer("transit_routes"))
    assert routes.groupby("mode").size().to_dict() == {"bus": 36, "microbus": 12}
    assert len(store.read_layer(get_layer("streets"))) > 10_000
