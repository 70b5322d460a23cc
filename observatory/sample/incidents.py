"""Violent incidents as the police (PNC) export them, 2015-2023, and the police's homicide counts per
municipality and year as its tables print them.

Homicide victims follow El Salvador's national rate per 100,000 (about 103 in 2015, 2.4 in 2023),
applied to each municipality's 2007 population times a factor of its own (higher in Apopa, Soyapango,
Ciudad Delgado, San Salvador and Mejicanos, lowest in Antiguo Cuscatlán) scaled so the AMSS total
keeps the national rate; robberies, extortions, injuries and sexual violence follow plausible falling
rates of registered, geolocated incidents. Within a municipality, half of the incidents gather
around a few hot points (a normal spread of a few hundred metres) and half spread uniformly, so that
hot spots exist. The counts table adds to each municipality's geolocated homicide victims those the
police counted without a place, as the Mesa Técnica's figures exceed any geolocated register.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer

from observatory.sample.boundaries import amss_facts
from observatory.sample.geometry import random_points_in
from observatory.settings import METRIC_CRS, STORAGE_CRS

INCIDENTS_STREAM = 7007
"""The incidents generator's own random stream (with the sample's seed)."""
YEARS = range(2015, 2024)
NATIONAL_HOMICIDE_RATE = {2015: 103.0, 2016: 81.2, 2017: 60.0, 2018: 51.0, 2019: 36.0, 2020: 19.7,
                          2021: 18.1, 2022: 7.8, 2023: 2.4}  # fmt: skip
"""Victims of homicide per 100,000 inhabitants in El Salvador (PNC / Mesa Técnica, rounded)."""
OTHER_RATES = {
    # source code: (rate per 100,000 in 2015, in 2023), registered and geolocated
    "ROB": (40.0, 15.0),
    "EXT": (25.0, 8.0),
    "LES": (35.0, 20.0),
    "VSX": (12.0, 12.0),
}
HOMICIDE_CODE = "HOM"
TYPE_CODES = {HOMICIDE_CODE: "homicidio", "ROB": "robo", "EXT": "extorsion", "LES": "lesiones",
              "VSX": "violencia_sexual"}  # fmt: skip
"""The police export's codes and the types the manifest maps them to."""
RISK_FACTOR = {"0602": 1.5, "0617": 1.4, "0619": 1.4, "0614": 1.3, "0608": 1.3, "0604": 1.1,
               "0607": 1.1, "0613": 1.0, "0618": 1.0, "0609": 0.9, "0612": 0.9, "0603": 0.8,
               "0511": 0.6, "0501": 0.3}  # fmt: skip
"""Each municipality's homicide rate relative to the AMSS's."""
VICTIMS_PER_HOMICIDE = {1: 0.93, 2: 0.05, 3: 0.02}
"""Share of homicide events by number of victims."""
CLUSTERED_SHARE = 0.5
HOT_POINTS_PER_MUNICIPALITY = (1, 3)
HOT_SPREAD_M = 350.0
INSET_M = 30.0
UNLOCATED_SHARE = 0.06
"""Homicides the police counted that the geolocated register lacks, as a share of those it has."""
POLICE_TABLE_NAMES = {"0501": "ANTIGUO CUSCATLAN", "0511": "NUEVA SAN SALVADOR", "0619": "DELGADO"}
"""Names the police's tables print instead of the official ones (upper case, no accents elsewhere)."""


def _yearly_rate(code: str, year: int) -> float:
    start, end = OTHER_RATES[code]
    return start + (end - start) * (year - YEARS[0]) / (YEARS[-1] - YEARS[0])


def _clustered_points(area: shapely.Geometry, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` x/y points inside ``area``: a share around a few hot points, the rest uniform."""
    clustered = int(rng.binomial(count, CLUSTERED_SHARE))
    hot = random_points_in(area, int(rng.integers(*HOT_POINTS_PER_MUNICIPALITY, endpoint=True)), rng)
    found = np.empty((0, 2))
    while len(found) < clustered:
        xy = rng.normal(hot[rng.integers(len(hot), size=4 * clustered)], HOT_SPREAD_M)
        found = np.concatenate([found, xy[shapely.contains_xy(area, xy[:, 0], xy[:, 1])]])
    points = np.concatenate([found[:clustered], random_points_in(area, count - clustered, rng)])
    return points[rng.permutation(count)]


def incidents_frame(
    municipalities: gpd.GeoDataFrame, populations: pd.Series, rng: np.random.Generator, *, scale: float = 1.0
) -> pd.DataFrame:
    """The police export: ``id_hecho, fecha (dd/mm/yyyy), delito, fallecidos, latitud, longitud``,
    ``municipality_code`` kept aside for the counts table (dropped before writing). ``scale``
    multiplies every expected count (the benchmarks' larger registers)."""
    metric = municipalities.to_crs(METRIC_CRS).set_index("code").geometry
    weight = populations * pd.Series(RISK_FACTOR).reindex(populations.index)
    weight = weight / weight.sum() * populations.sum() / populations  # AMSS total at the national rate
    to_lonlat = Transformer.from_crs(METRIC_CRS, STORAGE_CRS, always_xy=True)
    records = []
    for year in YEARS:
        days = pd.date_range(f"{year}-01-01", f"{year}-12-31").to_numpy()
        for code, population in populations.items():
            victims_expected = NATIONAL_HOMICIDE_RATE[year] * weight[code] * population / 1e5 * scale
            mean_victims = sum(k * share for k, share in VICTIMS_PER_HOMICIDE.items())
            counts = {HOMICIDE_CODE: rng.poisson(victims_expected / mean_victims)}
            counts |= {
                kind: rng.poisson(_yearly_rate(kind, year) * population / 1e5 * scale) for kind in OTHER_RATES
            }
            kinds = np.repeat(list(counts), list(counts.values()))
            if not len(kinds):
                continue
            area = metric[code].buffer(-INSET_M)
            points = _clustered_points(area, len(kinds), rng)
            lon, lat = to_lonlat.transform(points[:, 0], points[:, 1])
            victims = np.where(
                kinds == HOMICIDE_CODE,
                rng.choice(list(VICTIMS_PER_HOMICIDE), len(kinds), p=list(VICTIMS_PER_HOMICIDE.values())),
                0,
            )
            records.append(
                pd.DataFrame(
                    {
                        "fecha": rng.choice(days, len(kinds)),
                        "delito": kinds,
                        "fallecidos": victims,
                        "latitud": np.round(lat, 6),
                        "longitud": np.round(lon, 6),
                        "municipality_code": code,
                    }
                )
            )
    frame = pd.concat(records, ignore_index=True).sort_values(["fecha", "delito"], kind="stable")
    frame.insert(0, "id_hecho", [f"PNC-{i:06d}" for i in range(1, len(frame) + 1)])
    frame["fecha"] = pd.to_datetime(frame["fecha"]).dt.strftime("%d/%m/%Y")
    return frame.reset_index(drop=True)


def police_counts_frame(
    incidents: pd.DataFrame, names: pd.Series, departments: pd.Series, rng: np.random.Generator
) -> pd.DataFrame:
    """Homicides per municipality and year as the police's table prints them: department and
    municipality names in upper case, ``AÑO``, ``HOMICIDIOS``, and a department subtotal row."""
    homicides = incidents[incidents["delito"] == HOMICIDE_CODE].assign(
        year=pd.to_datetime(incidents["fecha"], format="%d/%m/%Y").dt.year
    )
    located = homicides.groupby(["municipality_code", "year"])["fallecidos"].sum()
    index = pd.MultiIndex.from_product([names.index, YEARS], names=["municipality_code", "year"])
    located = located.reindex(index, fill_value=0)
    counted = located + rng.poisson(located * UNLOCATED_SHARE)
    table = counted.rename("HOMICIDIOS").reset_index()
    table["DEPARTAMENTO"] = table["municipality_code"].map(departments).str.upper()
    table["MUNICIPIO"] = table["municipality_code"].map(
        lambda code: POLICE_TABLE_NAMES.get(code, names[code].upper())
    )
    table = table.rename(columns={"year": "AÑO"})[["DEPARTAMENTO", "MUNICIPIO", "AÑO", "HOMICIDIOS"]]
    subtotals = (
        table.groupby(["DEPARTAMENTO", "AÑO"], as_index=False)["HOMICIDIOS"]
        .sum()
        .assign(MUNICIPIO=lambda t: "TOTAL " + t["DEPARTAMENTO"])
    )
    return pd.concat([table, subtotals[table.columns]], ignore_index=True)


def write_incidents(
    out_dir: Path, municipalities: gpd.GeoDataFrame, seed: int, *, scale: float = 1.0
) -> tuple[Path, Path]:
    """Write ``incidentes_pnc.csv`` and ``homicidios_pnc.csv`` from the sample's seed; ``scale``
    as in :func:`incidents_frame`."""
    rng = np.random.default_rng([seed, INCIDENTS_STREAM])
    facts = amss_facts().set_index("code")
    incidents = incidents_frame(municipalities, facts["population_2007"].astype(float), rng, scale=scale)
    points, counts = out_dir / "incidentes_pnc.csv", out_dir / "homicidios_pnc.csv"
    incidents.drop(columns="municipality_code").to_csv(points, index=False)
    police_counts_frame(incidents, facts["name"], facts["department"], rng).to_csv(counts, index=False)
    return points, counts
