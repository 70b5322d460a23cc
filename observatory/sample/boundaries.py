"""The real AMSS the sample is laid on: the 14 geoBoundaries polygons joined through the names table
to the DIGESTYC codes and 2007 census facts in ``data/reference``."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd

from etl.lookups import names_table, normalise_name
from observatory.settings import REFERENCE_DIR, STORAGE_CRS

BOUNDARIES_FILE = "geoboundaries_slv_adm2.geojson"
FACTS_FILE = "amss_municipalities_2007.csv"
NAMES_FILE = "nombres_municipios.csv"


def amss_facts(reference_dir: Path = REFERENCE_DIR) -> pd.DataFrame:
    """The facts table of the 14 municipalities, with ``code`` as 4-digit text."""
    return pd.read_csv(reference_dir / FACTS_FILE, dtype={"code": str})


def amss_boundaries(reference_dir: Path = REFERENCE_DIR) -> gpd.GeoDataFrame:
    """The 14 real AMSS polygons with their code, official name, 2007 population and official area.

    The geoBoundaries features are those whose normalised ``shapeName`` is in the names table; each
    must match exactly one of the 14 codes. Returns columns code, name, population_2007,
    official_area_km2 and geometry, in EPSG:4326, sorted by code.
    """
    code_of = names_table(reference_dir / NAMES_FILE)
    national = gpd.read_file(reference_dir / BOUNDARIES_FILE).to_crs(STORAGE_CRS)
    national["code"] = national["shapeName"].map(lambda name: code_of.get(normalise_name(str(name))))
    found = national.dropna(subset=["code"])
    facts = amss_facts(reference_dir)
    if sorted(found["code"]) != sorted(facts["code"]):
        raise ValueError(f"expected one polygon per AMSS code, found codes {sorted(found['code'])}")
    joined = found[["code", "geometry"]].merge(
        facts[["code", "name", "population_2007", "official_area_km2"]], on="code"
    )
    columns = ["code", "name", "population_2007", "official_area_km2", "geometry"]
    return gpd.GeoDataFrame(joined[columns], crs=STORAGE_CRS).sort_values("code", ignore_index=True)
