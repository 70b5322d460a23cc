"""The sample data: real names, a clean tessellation, and the report's figures."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from observatory.sample import MUNICIPALITIES, write_sample


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("sample")
    files = write_sample(folder)
    return {
        "municipalities": files.municipalities,
        "zoning": files.zoning,
        "permits": files.permits,
    }


def test_fourteen_municipalities_tile_the_metropolis(sample: dict[str, Path]) -> None:
    municipalities = gpd.read_file(sample["municipalities"]).to_crs("EPSG:32616")
    assert sorted(municipalities["NOM_MUN"]) == sorted(m[1] for m in MUNICIPALITIES)
    assert municipalities.is_valid.all()
    union = shapely.union_all(municipalities.geometry.values)
    assert union.geom_type == "Polygon"  # no gaps splitting the metropolis
    assert abs(union.area - municipalities.area.sum()) < 1e-4 * union.area  # no overlaps
    assert all(len(shapely.get_coordinates(g)) > 5 for g in municipalities.geometry)  # not rectangles
    # Each municipality contains its real centroid.
    lonlat = municipalities.to_crs(4326)
    for _, name, _, lon, lat, _, _ in MUNICIPALITIES:
        outline = lonlat.loc[lonlat["NOM_MUN"] == name, "geometry"].iloc[0]
        assert outline.contains(shapely.Point(lon, lat)), name
    official = {m[1]: m[6] for m in MUNICIPALITIES}
    for name, area in zip(municipalities["NOM_MUN"], municipalities.area / 1e6, strict=True):
        assert 0.3 * official[name] < area < 2 * official[name], name
    total = municipalities["POB_2007"].sum()
    assert 1_500_000 < total < 1_650_000  # the AMSS's 2007 census population


def test_permits_follow_the_report(sample: dict[str, Path]) -> None:
    permits = pd.read_csv(sample["permits"])
    construction = permits[permits["tramite"] == "permiso_construccion"]
    rulings = permits[permits["tramite"] == "calificacion_lugar"]
    assert len(construction) == 547 and len(rulings) == 1406
    assert construction["inversion_usd"].sum() == 310_887_074
    assert construction["area_m2"].sum() == 758_967
    shares = (construction["uso"].value_counts(normalize=True) * 100).round().to_dict()
    assert shares == {
        "habitacional": 58,
        "comercio_servicios": 18,
        "equipamientos": 16,
        "otros": 6,
        "industria": 2,
    }
    shares = (rulings["uso"].value_counts(normalize=True) * 100).round().to_dict()
    assert shares == {
        "otros": 31,
        "comercio_servicios": 27,
        "habitacional": 27,
        "equipamientos": 12,
        "industria": 3,
    }
    assert permits["expediente"].is_unique
    days = pd.Series(
        pd.to_datetime(permits["fecha_resolucion"]).values.astype("datetime64[D]")
        - pd.to_datetime(permits["fecha_ingreso"]).values.astype("datetime64[D]")
    )
    assert (days.dt.days > 0).all()


def test_same_seed_same_data_and_scaling(tmp_path: Path, sample: dict[str, Path]) -> None:
    again = write_sample(tmp_path / "again")
    assert again.permits.read_bytes() == sample["permits"].read_bytes()
    assert again.municipalities.read_bytes() == sample["municipalities"].read_bytes()
    bigger = write_sample(tmp_path / "bigger", permits_scale=4.0)
    assert len(pd.read_csv(bigger.permits)) == 4 * 1953
