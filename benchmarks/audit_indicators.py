#!/usr/bin/env python
# ruff: noqa: E501
"""Independent recomputation of the observatory's indicators from the raw sample files (issue 20).

    python benchmarks/audit_indicators.py --data-dir DIR [--sample-dir data/sample] [--api URL]

DIR is an OBSERVATORY_DATA_DIR holding a computed GeoPackage store (``DIR/observatory.gpkg``), e.g.

    OBSERVATORY_DATA_DIR=/tmp/obs-audit observatory load      # loads data/sample/*.toml and computes
    OBSERVATORY_DATA_DIR=/tmp/obs-audit observatory compute --all

Rule of independence: this script reads only the raw files under data/sample (through their TOML
manifests), data/reference, zoning/compatibility.csv and zoning/classes.py's codes (repeated below),
the settings' values, and the indicators' technical sheets as the API serves them (``/indicators``;
when no ``--api`` is given the script starts ``observatory serve`` on DIR on a free port, fetches the
sheets and stops it). It never imports or reads ``observatory/indicators``. The store is read only
for the values to compare (every value, withheld ones included), and, where a sheet says a value is
derived from *published* values only (``homicide_rate_smoothed``, the composite index), for which
values are withheld (``flag = suppressed``): disclosure control itself is not recomputed.

Values are compared keyed by (indicator, geography, municipality code, period) with a tolerance of
1e-6 absolute or relative. The script prints one row per indicator and geography and exits 1 on any
mismatch, on a value recomputed here that the store lacks, or on a stored value not recomputed here.

Every indicator of the sheets is recomputed (76: the 15 themes and the composite index). With
--skip-network the four network accessibility indicators are not, and the composite takes them from
the store (said in the output). population_in_hotspots_share runs Gi* on the published incident
cells (which hexagons are published is read from the store's incident_cells, the disclosure module's
choice; their counts are checked against the raw incidents), by conditional permutation through
esda.G_Local with the sheet's permutations and seed where the sheet says so (only the library that
draws them gives the same p), else analytically; homicide_rate_smoothed is Marshall's local EB over
queen neighbours (libpysal) where the sheet says LOCAL, else the global EB.

Where a value differs, the script also tries the reading it replaced (2007 census denominators for the
violence rates, the previous zero rule of housing_permit_density, the other dating of the hazard
permits, route geometries as drawn) and says whether that reading reproduces the store: a diagnosis
only, never a pass.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import re
import socket
import sqlite3
import subprocess
import sys
import time
import tomllib
import unicodedata
import urllib.request
import warnings
import zipfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

warnings.filterwarnings("ignore")

REPO = Path(__file__).resolve().parent.parent
METRIC = "EPSG:32616"
GEO07, GEO24 = "municipios_2007", "municipios_2024"
TOL = 1e-6

# zoning/classes.py: raw plan code -> class (repeated, not imported: the audit reads, it does not reuse)
PLAN_CLASSES = {
    "HAB-AD": "habitacional",
    "HAB-MD": "habitacional",
    "HAB-BD": "habitacional",
    "COM": "comercio_servicios",
    "IND": "industria",
    "EQ": "equipamiento",
    "MX": "mixto",
    "EP": "espacio_publico",
    "PE": "proteccion",
    "AG": "agricola",
}
N_PLAN_CLASSES = 8
URBANISED = {"habitacional", "comercio_servicios", "industria", "equipamiento", "mixto"}

NOT_COVERED: dict[str, str] = {}
NETWORK = ("transit_stop_access_500m", "health_access_1km", "school_access_1km", "public_space_access_400m")
HANDLED = {
    *NETWORK,
    "homicide_rate",
    "violent_incident_rate",
    "robbery_rate",
    "extortion_rate",
    "homicide_rate_police",
    "homicide_rate_smoothed",
    "population_in_hotspots_share",
    "permits_count",
    "site_rulings_count",
    "authorised_floor_area",
    "declared_investment",
    "mean_processing_days",
    "median_processing_days",
    "resolved_within_legal_limit",
    "mean_processing_days_rulings",
    "median_processing_days_rulings",
    "resolved_within_legal_limit_rulings",
    "housing_permits_share",
    "housing_rulings_share",
    "permits_compatible_share",
    "complaints_without_permit_share",
    "housing_permit_density",
    "investment_per_authorised_m2",
    "median_investment_per_m2",
    "permits_in_hazard_zones",
    "floor_area_in_hazard_zones",
    "population_density",
    "population_density_urbanised",
    "built_up_density",
    "land_use_mix",
    "green_cover_share",
    "green_area_per_inhabitant",
    "flood_exposed_area_100y",
    "flood_exposed_population_100y",
    "flood_exposed_population_share_100y",
    "landslide_high_population",
    "landslide_high_population_share",
    "public_space_per_inhabitant",
    "schools_per_10k",
    "health_facilities_per_10k",
    "transit_route_length_per_10k",
    "street_density",
    "intersection_density",
    "dependency_ratio",
    "sex_ratio",
    "population_growth_rate",
    "school_attendance_rate",
    "literacy_rate",
    "employment_rate",
    "unemployment_rate",
    "piped_water_coverage",
    "sewer_coverage",
    "electricity_coverage",
    "overcrowding_rate",
    "poverty_rate",
    "businesses_per_1000",
    "employees_per_business",
    "poverty_gini",
    "access_gini",
    "poverty_theil",
    "poverty_theil_between",
    "poverty_theil_within",
    "cpi_services",
    "cpi_mobility",
    "cpi_risk",
    "cpi_environment",
    "cpi_urban_control",
    "cpi_violence",
    "cpi_equity",
    "cpi_infrastructure",
    "cpi_education",
    "cpi_overall",
}

# The period each value is dated by, as this audit reads the sheets (checked by the keys themselves: a
# value at another period shows as missing here and extra in the store).
DATING = {
    **dict.fromkeys(
        [
            "homicide_rate",
            "violent_incident_rate",
            "robbery_rate",
            "extortion_rate",
            "homicide_rate_police",
            "homicide_rate_smoothed",
            "population_in_hotspots_share",
        ],
        "calendar year of the events / police table",
    ),
    **dict.fromkeys(
        [
            "permits_count",
            "site_rulings_count",
            "authorised_floor_area",
            "declared_investment",
            "mean_processing_days",
            "median_processing_days",
            "resolved_within_legal_limit",
            "mean_processing_days_rulings",
            "median_processing_days_rulings",
            "resolved_within_legal_limit_rulings",
            "housing_permits_share",
            "housing_rulings_share",
            "permits_compatible_share",
            "housing_permit_density",
            "investment_per_authorised_m2",
            "median_investment_per_m2",
        ],
        "year of resolution",
    ),
    **dict.fromkeys(
        ["permits_in_hazard_zones", "floor_area_in_hazard_zones"],
        "year as the sheet states (submission or resolution)",
    ),
    "complaints_without_permit_share": "year of the complaint",
    **dict.fromkeys(
        [
            "population_density",
            "population_density_urbanised",
            "public_space_per_inhabitant",
            "schools_per_10k",
            "health_facilities_per_10k",
        ],
        "2007 (the census population)",
    ),
    **dict.fromkeys(
        ["built_up_density", "green_cover_share", "green_area_per_inhabitant", "flood_exposed_area_100y"],
        "the raster catalogue's year (layers/rasters/*.toml)",
    ),
    **dict.fromkeys(
        [
            "flood_exposed_population_100y",
            "flood_exposed_population_share_100y",
            "landslide_high_population",
            "landslide_high_population_share",
            "transit_route_length_per_10k",
            "transit_stop_access_500m",
            "health_access_1km",
            "school_access_1km",
            "public_space_access_400m",
        ],
        "the population layer's period",
    ),
    **dict.fromkeys(["street_density", "intersection_density"], "the street extract's period (its manifest)"),
    "land_use_mix": "the plan version's year",
    "population_growth_rate": "the later census",
    **dict.fromkeys(
        [
            "dependency_ratio",
            "sex_ratio",
            "piped_water_coverage",
            "sewer_coverage",
            "electricity_coverage",
            "overcrowding_rate",
            "poverty_rate",
            "school_attendance_rate",
            "literacy_rate",
            "employment_rate",
            "unemployment_rate",
            "businesses_per_1000",
            "employees_per_business",
            "poverty_gini",
            "access_gini",
            "poverty_theil",
            "poverty_theil_between",
            "poverty_theil_within",
        ],
        "the statistics' year",
    ),
}


# --------------------------------------------------------------------------------------------- utils
def norm_name(s: str) -> str:
    s = unicodedata.normalize("NFKD", str(s))
    s = "".join(c for c in s if not unicodedata.combining(c))
    return " ".join(s.casefold().split())


def manifest(sample: Path, name: str) -> dict:
    return tomllib.loads((sample / f"{name}.toml").read_text(encoding="utf-8"))


def col(df: pd.DataFrame, name: str) -> str:
    """The column of df named `name`, compared case-insensitively (manifests write lower case)."""
    for c in df.columns:
        if str(c).casefold() == name.casefold():
            return c
    raise KeyError(f"column {name!r} not in {list(df.columns)}")


def field_source(spec):
    if isinstance(spec, str):
        return spec, None
    return spec.get("source"), spec


def settings_values() -> dict:
    vals = {
        "legal_limit_business_days": 30,
        "legal_limit_business_days_rulings": 30,
        "complaint_permit_distance_m": 50.0,
        "complaint_permit_days": 365,
        "small_n": 5,
    }
    try:  # the setting values only (observatory/settings.py), never the indicator code
        from observatory.settings import Settings

        s = Settings()
        for k in vals:
            vals[k] = getattr(s, k, vals[k])
    except Exception as exc:  # pragma: no cover - outside the project's environment
        print(f"(settings not importable, defaults used: {exc})")
        for k in vals:
            env = os.environ.get("OBSERVATORY_" + k.upper())
            if env is not None:
                vals[k] = type(vals[k])(env)
    return vals


def years_from_text(text: str):
    m = re.search(r"((?:19|20)\d{2})\s*[-–]\s*((?:19|20)\d{2})", text or "")
    return (int(m.group(1)), int(m.group(2))) if m else None


def coverage_of(man: dict) -> tuple[set[int] | None, set[str] | None, str]:
    """The years and types a source declares it covers: a [coverage] table if the manifest has one
    (years = [a, b] or from/to, types = [...]), else the year range of its description and the type
    codes its `type` mapping lists."""
    cov = man.get("coverage") or (man.get("source") or {}).get("coverage")
    years = types = None
    how = []
    if isinstance(cov, dict):
        y = cov.get("years") or cov.get("periods") or cov.get("period")
        if isinstance(y, (list, tuple)) and len(y) == 2 and all(isinstance(v, int) for v in y):
            years = set(range(y[0], y[1] + 1))
        elif isinstance(y, (list, tuple)):
            years = {int(v) for v in y}
        elif isinstance(y, str) and years_from_text(y):
            a, b = years_from_text(y)
            years = set(range(a, b + 1))
        elif cov.get("from") or cov.get("start"):
            a = int(cov.get("from") or cov.get("start"))
            b = int(cov.get("to") or cov.get("end"))
            years = set(range(a, b + 1))
        t = cov.get("types") or cov.get("values")
        if t:
            types = set(t)
        how.append("[coverage]")
    if years is None and years_from_text(man.get("description", "")):
        a, b = years_from_text(man["description"])
        years = set(range(a, b + 1))
        how.append("description years")
    if types is None:
        tspec = (man.get("fields") or {}).get("type")
        if isinstance(tspec, dict) and "values" in tspec:
            types = set(tspec["values"].values())
            how.append("type mapping")
    return years, types, ", ".join(how)


# ------------------------------------------------------------------------------------------- sheets
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fetch_json(url: str, timeout=30):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read().decode("utf-8"))


def get_sheets(args) -> dict:
    if args.sheets:
        data = json.loads(Path(args.sheets).read_text())
        return {s["id"]: s for s in data.get("indicators", data)}
    proc = None
    base = args.api
    if not base:
        exe = args.observatory or str(Path(sys.executable).with_name("observatory"))
        port = free_port()
        env = dict(os.environ, OBSERVATORY_DATA_DIR=str(args.data_dir))
        proc = subprocess.Popen(
            [exe, "serve", "--port", str(port)],
            env=env,
            cwd=str(args.data_dir),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                listing = fetch_json(base + "/indicators")
                break
            except Exception:
                if proc is not None and proc.poll() is not None:
                    raise SystemExit("observatory serve stopped before answering /indicators") from None
                time.sleep(0.5)
        else:
            raise SystemExit(f"no answer from {base}/indicators")
        sheets = {}
        for s in listing["indicators"]:
            try:
                sheets[s["id"]] = fetch_json(f"{base}/indicators/{s['id']}")
            except Exception:
                sheets[s["id"]] = s
        return sheets
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


# ---------------------------------------------------------------------------------------- raw data
class Raw:
    """Every raw input, read from data/sample through its manifest (never from the store)."""

    def __init__(self, sample: Path):
        import geopandas as gpd

        self.sample = sample
        self.ref = (sample / "../reference").resolve()
        ref = sample  # manifests' relative paths are read from their folder
        names = pd.read_csv(self.ref / "nombres_municipios.csv", dtype=str)
        self.name_to_code = {norm_name(n): c for n, c in zip(names["name"], names["code"], strict=False)}
        facts = pd.read_csv(self.ref / "amss_municipalities_2007.csv", dtype={"code": str})
        cw = pd.read_csv(self.ref / "municipios_2024.csv", dtype=str)
        man = manifest(sample, "municipios")
        gb = gpd.read_file((ref / man["source"]["path"]).resolve())
        gb["code"] = gb[man["names"]["column"]].map(lambda n: self.name_to_code.get(norm_name(n)))
        gb = gb[gb["code"].notna()].copy()
        gb = gb.dissolve(by="code").reset_index()[["code", "geometry"]]
        gb = gb.merge(facts, on="code").merge(cw[["code", "municipality_2024_code"]], on="code")
        self.munis = gb.set_crs("EPSG:4326", allow_override=True) if gb.crs is None else gb
        self.codes = sorted(self.munis["code"])
        self.to24 = dict(zip(self.munis["code"], self.munis["municipality_2024_code"], strict=False))
        self.pop07 = dict(zip(self.munis["code"], self.munis["population_2007"].astype(float), strict=False))
        self.area_official = dict(
            zip(self.munis["code"], self.munis["official_area_km2"].astype(float), strict=False)
        )
        self.munis_m = self.munis.to_crs(METRIC)
        self._stats = None

    # -- points placed in their municipality by geometry (as the load derives `municipality`)
    def place(self, gdf):
        import geopandas as gpd

        pts = gdf.to_crs("EPSG:4326")
        j = gpd.sjoin(pts, self.munis[["code", "geometry"]], how="inner", predicate="intersects")
        j = j[~j.index.duplicated(keep="first")]
        return j.rename(columns={"code": "municipality_code"}).drop(columns=["index_right"])

    def csv_points(self, name: str, dtype=str):
        import geopandas as gpd

        man = manifest(self.sample, name)
        src = man["source"]
        df = pd.read_csv(
            self.sample / src["path"],
            dtype=dtype,
            encoding=src.get("encoding", "utf-8"),
            sep=src.get("delimiter", ","),
        )
        x = pd.to_numeric(df[col(df, src["x"])].astype(str).str.replace(",", "."), errors="coerce")
        y = pd.to_numeric(df[col(df, src["y"])].astype(str).str.replace(",", "."), errors="coerce")
        g = gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(x, y), crs=src.get("crs", "EPSG:4326"))
        return man, g

    # -- incidents
    def incidents(self):
        man, g = self.csv_points("incidentes_pnc")
        f = man["fields"]
        tsrc, tspec = field_source(f["type"])
        out = pd.DataFrame(
            {
                "date": pd.to_datetime(g[col(g, f["date"]["source"])], format=f["date"].get("format")),
                "type": g[col(g, tsrc)].map(tspec["values"]),
                "fatalities": pd.to_numeric(g[col(g, f["fatalities"])]),
            }
        )
        g = g[["geometry"]].join(out)
        g = g[g["type"].notna()]  # an unlisted code is a reject
        g = self.place(g)
        g["year"] = g["date"].dt.year
        return man, g

    # -- permits
    def permits(self):
        man, g = self.csv_points("permisos")
        f = man["fields"]
        out = pd.DataFrame({k: g[col(g, v)] for k, v in f.items() if isinstance(v, str)})
        for c in ("floor_area_m2", "investment_usd"):
            out[c] = pd.to_numeric(out[c], errors="coerce")
        for c in ("submitted", "resolved"):
            out[c] = pd.to_datetime(out[c], errors="coerce")
        g = g[["geometry"]].join(out)
        g = self.place(g)
        st = g["status"].fillna("").str.lower()
        g["approved"] = st.str.startswith("aprob")
        g["denied"] = st.str.startswith("deneg") | st.str.startswith("rechaz")
        g["resolved_ok"] = (g["approved"] | g["denied"]) & g["resolved"].notna()
        g["ryear"] = g["resolved"].dt.year
        g["syear"] = g["submitted"].dt.year
        return man, g

    def complaints(self):
        man, g = self.csv_points("denuncias_opamss")
        f = man["fields"]
        out = pd.DataFrame({k: g[col(g, v)] for k, v in f.items() if isinstance(v, str)})
        out["date"] = pd.to_datetime(out["date"])
        g = self.place(g[["geometry"]].join(out))
        g["year"] = g["date"].dt.year
        return man, g

    # -- statistics (long: municipality_code, period, variable, value, source)
    def _table(self, name):
        man = manifest(self.sample, name)
        src = man["source"]
        p = self.sample / src["path"]
        if p.suffix in (".xlsx", ".xls"):
            df = pd.read_excel(
                p, sheet_name=src.get("sheet", 0), header=src.get("header_row", 1) - 1, dtype=object
            )
        else:
            df = pd.read_csv(
                p, dtype=str, encoding=src.get("encoding", "utf-8"), sep=src.get("delimiter", ",")
            )
        for rule in src.get("skip", []):
            c = col(df, rule["column"])
            df = df[~df[c].astype(str).str.match(rule["pattern"])]
        f = man["fields"]
        out = pd.DataFrame(index=df.index)
        for k, v in f.items():
            if isinstance(v, dict) and "value" in v:
                out[k] = v["value"]
            else:
                s, _ = field_source(v)
                out[k] = df[col(df, s)]
        if "names" in man:
            out["municipality_code"] = df[col(df, man["names"]["column"])].map(
                lambda n: self.name_to_code.get(norm_name(n))
            )
        out["municipality_code"] = out["municipality_code"].astype(str).str.strip().str.zfill(4)
        out["period"] = pd.to_numeric(out["period"]).astype(int)
        out["value"] = pd.to_numeric(out["value"].astype(str).str.replace(",", ""), errors="coerce")
        out["source_file"] = name
        return out[out["municipality_code"].isin(self.codes)]

    def stats(self):
        if self._stats is None:
            parts = [
                self._table(n)
                for n in (
                    "censos_poblacion_vivienda",
                    "estadisticas",
                    "ehpm_municipal",
                    "censos_economicos",
                    "mapa_pobreza_urbana",
                    "proyecciones_poblacion",
                    "homicidios_pnc",
                )
            ]
            self._stats = pd.concat(parts, ignore_index=True)
        return self._stats

    def stat_table(self, variables):
        s = self.stats()
        s = s[s["variable"].isin(variables)]
        return s.pivot_table(
            index=["municipality_code", "period"], columns="variable", values="value", aggfunc="sum"
        )

    # -- population cells (pixels with people), municipality by the cell's centre
    def population_cells(self):
        import geopandas as gpd
        import rasterio
        from shapely.geometry import box

        man = manifest(self.sample, "poblacion")
        with rasterio.open(self.sample / man["source"]["path"]) as r:
            a = r.read(1).astype(float)
            nod = r.nodata
            t = r.transform
            crs = r.crs
        rows, cols = np.nonzero((a > 0) & (a != nod) & np.isfinite(a))
        polys, _cent = [], []
        for i, j in zip(rows, cols, strict=False):
            x0, y0 = t * (j, i)
            x1, y1 = t * (j + 1, i + 1)
            polys.append(box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)))
        g = gpd.GeoDataFrame({"population": a[rows, cols], "row": rows, "col": cols}, geometry=polys, crs=crs)
        c = g.copy()
        c["geometry"] = g.geometry.centroid
        j = gpd.sjoin(c, self.munis[["code", "geometry"]], how="inner", predicate="intersects")
        j = j[~j.index.duplicated(keep="first")]
        g = g.loc[j.index].copy()
        g["municipality_code"] = j["code"]
        period = man["fields"].get("period", {}).get("value")
        return g, period


# ------------------------------------------------------------------------------------ recomputation
class Results:
    def __init__(self):
        self.v = {}  # (indicator, geography, unit, period) -> value
        self.notes = defaultdict(list)
        self.failures: list[str] = []
        self.n: dict = {}  # (indicator, geography, unit, period) -> records behind the value

    def put(self, ind, geo, unit, period, value):
        if value is None or (isinstance(value, float) and not np.isfinite(value)):
            return
        self.v[(ind, geo, str(unit), int(period))] = float(value)

    def indicators(self):
        return sorted({k[0] for k in self.v})


def both_geos(raw: Raw):
    return ((GEO07, {c: c for c in raw.codes}), (GEO24, raw.to24))


def ratio_by_unit(res, ind, raw, num: dict, den: dict, scale=1.0, keys=None, nrec: dict | None = None):
    """num/den keyed (code, period); 2024 from summed numerators and denominators (all districts).
    nrec: the records behind each value (the store's n), summed likewise."""
    keys = keys if keys is not None else set(num) & set(den)
    for geo, m in both_geos(raw):
        agg_n, agg_d, cnt = defaultdict(float), defaultdict(float), defaultdict(int)
        for c, p in keys:
            if c not in m:
                continue
            u = m[c]
            agg_n[(u, p)] += num.get((c, p), 0.0)
            agg_d[(u, p)] += den[(c, p)]
            cnt[(u, p)] += 1
            if nrec is not None:
                res.n[(ind, geo, str(u), int(p))] = res.n.get((ind, geo, str(u), int(p)), 0) + nrec.get(
                    (c, p), 0
                )
        for (u, p), d in agg_d.items():
            need = sum(1 for c in raw.codes if m[c] == u)
            if cnt[(u, p)] != need or d == 0:
                continue
            res.put(ind, geo, u, p, scale * agg_n[(u, p)] / d)


def violence(res: Results, raw: Raw, sheets: dict, bar, census_only: bool = False):
    """census_only: the previous reading (2007 census for every year), for the diagnosis only."""
    man, inc = raw.incidents()
    cov = man.get("coverage")
    all_types = set(man["fields"]["type"]["values"].values())
    if cov:  # declared: [coverage] years = [first, last], types = [...] (none: every type)
        years, types, how = coverage_of(man)
        types = set(cov.get("types") or all_types)
    else:  # undeclared (sheet of 5abbcbd): the years in which the source records that type somewhere
        years, types, how = None, all_types, "the years each type is recorded"
    if not census_only:
        res.notes["violence"].append(
            f"incidents coverage ({how}): "
            + (f"years {min(years)}–{max(years)}, " if years else "")
            + f"types {sorted(types)}"
        )
    stats = raw.stats()
    denom = year_population(raw, census_only)

    defs = {
        "homicide_rate": ({"homicidio"}, "fatalities"),
        "violent_incident_rate": (None, "count"),
        "robbery_rate": ({"robo"}, "count"),
        "extortion_rate": ({"extorsion"}, "count"),
    }
    for ind, (tset, what) in defs.items():
        # every incident: all the types the manifest maps (a source covering fewer leaves it missing)
        tspec = man["fields"]["type"]
        needed = set(tspec["values"].values()) if tset is None else tset
        if not needed <= set(types):
            res.notes[ind].append(
                f"types {sorted(needed - set(types))} not in the source's coverage: no value"
            )
            continue
        sub = inc if tset is None else inc[inc["type"].isin(tset)]
        grp = sub.groupby(["municipality_code", "year"])
        numer = (grp["fatalities"].sum() if what == "fatalities" else grp.size()).to_dict()
        events = grp.size().to_dict()  # n = events (hechos) on every violence sheet
        num, den = {}, {}
        yrs = years if years is not None else sorted(sub["year"].unique())
        for c in raw.codes:
            for y in yrs:  # zero only inside the coverage
                num[(c, y)] = float(numer.get((c, y), 0))
                den[(c, y)] = denom(c, y)
        ratio_by_unit(res, ind, raw, num, den, 1e5, nrec={k: events.get(k, 0) for k in num})
        bar()
    # police homicide counts (statistics): the rows the table has
    pnc = stats[(stats["variable"] == "homicidios") & (stats["source_file"] == "homicidios_pnc")]
    num = {
        (c, int(p)): float(v)
        for c, p, v in zip(pnc["municipality_code"], pnc["period"], pnc["value"], strict=False)
        if pd.notna(v)
    }
    # the sheet: "un municipio o año que la tabla no da no tiene valor" (no zero filled in)
    den = {k: denom(*k) for k in num}
    ratio_by_unit(res, "homicide_rate_police", raw, num, den, 1e5, nrec=num)
    bar()


def year_population(raw: Raw, census_only: bool = False):
    """denom(code, year): the year's loaded estimate; a year after the last estimate takes the latest
    earlier one; a municipality without estimates (or census_only), the 2007 census."""
    stats = raw.stats()
    proj = stats[stats["variable"] == "poblacion_estimada"]
    projd = {
        (c, int(p)): float(v)
        for c, p, v in zip(proj["municipality_code"], proj["period"], proj["value"], strict=True)
    }
    est_years = defaultdict(list)
    for c, y in projd:
        est_years[c].append(y)

    def denom(c, y):
        if census_only:
            return raw.pop07[c]
        ys = [e for e in est_years.get(c, []) if e <= y]
        return projd[(c, max(ys))] if ys else raw.pop07[c]

    return denom


def local_eb(res: Results, raw: Raw, src: Results, sup: set, denom) -> None:
    """The sheet (94a2bb3): Marshall's (1991, s. 3) local EB. Each year e_i = published rate x the
    year's population b_i; N_i = the unit and its queen neighbours (libpysal, polygons of the
    geography) whose rate is published; m_i = sum e / sum b over N_i; s2_i = sum b_j (r_j - m_i)^2 /
    sum b - m_i / mean b, clamped at 0; smoothed m_i + (r_i - m_i) s2_i / (s2_i + m_i / b_i) (m_i = 0:
    0). A withheld unit: the prior mean of its published neighbours (none: no value)."""
    from libpysal.weights import Queen

    for geo, m in both_geos(raw):
        g = raw.munis.assign(u=raw.munis["code"].map(m)).dissolve(by="u").reset_index()
        wq = Queen.from_dataframe(g, use_index=False, silence_warnings=True)
        units = list(g["u"])
        nb = {units[i]: [units[j] for j in wq.neighbors[i]] for i in range(len(units))}
        years = sorted({k[3] for k in src.v if k[0] == "homicide_rate" and k[1] == geo})
        for p in years:
            r = {
                u: src.v[("homicide_rate", geo, u, p)] / 1e5
                for u in units
                if ("homicide_rate", geo, u, p) in src.v
            }
            b = {u: sum(denom(c, p) for c in raw.codes if m[c] == u) for u in units}
            pub = {u for u in r if (geo, u, p) not in sup}
            e = {u: r[u] * b[u] for u in pub}
            for u in units:
                if u in pub:
                    n_ = [u] + [v for v in nb[u] if v in pub]
                    sb = sum(b[v] for v in n_)
                    mi = sum(e[v] for v in n_) / sb
                    s2 = max(sum(b[v] * (r[v] - mi) ** 2 for v in n_) / sb - mi / (sb / len(n_)), 0.0)
                    val = 0.0 if mi == 0 else mi + (r[u] - mi) * s2 / (s2 + mi / b[u])
                    res.put("homicide_rate_smoothed", geo, u, p, 1e5 * val)
                elif u in r:
                    n_ = [v for v in nb[u] if v in pub]
                    if n_:
                        res.put(
                            "homicide_rate_smoothed",
                            geo,
                            u,
                            p,
                            1e5 * sum(e[v] for v in n_) / sum(b[v] for v in n_),
                        )
    res.notes["homicide_rate_smoothed"].append(
        "local EB over queen neighbours (the sheet's 'LOCAL' estimator)"
    )


def smoothed(
    res: Results,
    raw: Raw,
    sheets,
    stored: pd.DataFrame,
    census_only: bool = False,
    rates_from: Results | None = None,
    victims_pop: str = "same",
):
    """Marshall (1991) global EB over the units whose homicide_rate is published (store's flags).
    victims = published rate x the population it was computed on ("same"), or x the 2007 census
    ("census": a diagnosis only)."""
    """Marshall (1991) global EB over the units whose homicide_rate is published (store's flags)."""
    sup = set(
        zip(
            stored.loc[
                stored["indicator_id"].eq("homicide_rate") & stored["flag"].eq("suppressed"), "geography"
            ],
            stored.loc[
                stored["indicator_id"].eq("homicide_rate") & stored["flag"].eq("suppressed"),
                "municipality_code",
            ],
            stored.loc[
                stored["indicator_id"].eq("homicide_rate") & stored["flag"].eq("suppressed"), "period"
            ].astype(int),
            strict=False,
        )
    )
    denom = year_population(raw, census_only)
    census = year_population(raw, True)
    src = rates_from if rates_from is not None else res
    if "LOCAL" in sheets.get("homicide_rate_smoothed", {}).get("formula", "") and victims_pop == "same":
        return local_eb(res, raw, src, sup, denom)
    for geo, m in both_geos(raw):
        rates = {(u, p): v for (i, g, u, p), v in src.v.items() if i == "homicide_rate" and g == geo}
        for p in sorted({p for _, p in rates}):
            units = [u for (u, q) in rates if q == p and (geo, u, p) not in sup]
            if not units:
                continue
            pick = census if victims_pop == "census" else denom
            n = np.array([sum(pick(c, p) for c in raw.codes if m[c] == u) for u in units])
            y = np.array([rates[(u, p)] * nn / 1e5 for u, nn in zip(units, n, strict=True)])
            r = y / n
            b = y.sum() / n.sum()
            s2 = (n * (r - b) ** 2).sum() / n.sum()
            a = s2 - b / n.mean()
            eb = np.full_like(r, b) if a < 0 else b + (a / (a + b / n)) * (r - b)
            for u, v in zip(units, eb, strict=False):
                res.put("homicide_rate_smoothed", geo, u, p, 1e5 * v)


def business_days(sub: pd.Series, resd: pd.Series) -> np.ndarray:
    import holidays

    ok = sub.notna() & resd.notna()
    out = np.full(len(sub), np.nan)
    if not ok.any():
        return out
    y0, y1 = int(sub[ok].dt.year.min()), int(resd[ok].dt.year.max())
    hol = holidays.country_holidays("SV", subdiv="SS", years=range(y0, y1 + 1))
    hd = np.array(sorted(hol.keys()), dtype="datetime64[D]")
    a = sub[ok].values.astype("datetime64[D]") + np.timedelta64(1, "D")
    b = resd[ok].values.astype("datetime64[D]") + np.timedelta64(1, "D")
    out[ok.values] = np.busday_count(a, b, holidays=hd)
    return out


def urban_control(res: Results, raw: Raw, sheets: dict, st: dict, bar, alt: Results | None = None):
    import geopandas as gpd
    import rasterio

    _, pm = raw.permits()
    res.notes["urban_control"].append(
        "permit statuses in the sample: "
        + ", ".join(f"{k} {v}" for k, v in pm["status"].value_counts().items())
    )
    pm["bdays"] = business_days(pm["submitted"], pm["resolved"])
    PC, CL = "permiso_construccion", "calificacion_lugar"
    for geo, m in both_geos(raw):
        pm["u"] = pm["municipality_code"].map(m)
        units = sorted(set(m.values()))
        for kind, sfx, cnt_id, share_id, lim in (
            (PC, "", "permits_count", "housing_permits_share", st["legal_limit_business_days"]),
            (
                CL,
                "_rulings",
                "site_rulings_count",
                "housing_rulings_share",
                st["legal_limit_business_days_rulings"],
            ),
        ):
            k = pm[pm["kind"] == kind]
            ap = k[k["approved"] & k["resolved"].notna()]
            years = sorted(ap["ryear"].dropna().astype(int).unique())
            cnt = ap.groupby(["u", "ryear"]).size()
            for y in years:
                for u in units:
                    res.put(cnt_id, geo, u, y, float(cnt.get((u, y), 0)))
            known = ap[ap["use_class"].notna() & (ap["use_class"].astype(str).str.len() > 0)]
            for (u, y), g in known.groupby(["u", "ryear"]):
                res.put(share_id, geo, u, y, 100.0 * (g["use_class"] == "habitacional").sum() / len(g))
            rs = k[k["resolved_ok"]]
            for (u, y), g in rs.groupby(["u", "ryear"]):
                d = g["bdays"].to_numpy()
                res.put(f"mean_processing_days{sfx}", geo, u, y, float(np.mean(d)))
                res.put(f"median_processing_days{sfx}", geo, u, y, float(np.median(d)))
                res.put(f"resolved_within_legal_limit{sfx}", geo, u, y, 100.0 * (d <= lim).sum() / len(d))
        k = pm[pm["kind"] == PC]
        ap = k[k["approved"] & k["resolved"].notna()]
        for (u, y), g in ap.groupby(["u", "ryear"]):
            fa = g["floor_area_m2"].dropna()
            iv = g["investment_usd"].dropna()
            if len(fa):
                res.put("authorised_floor_area", geo, u, y, fa.sum())
            if len(iv):
                res.put("declared_investment", geo, u, y, iv.sum())
            both = g[g["floor_area_m2"].notna() & g["investment_usd"].notna()]
            if len(both):
                res.put(
                    "investment_per_authorised_m2",
                    geo,
                    u,
                    y,
                    both["investment_usd"].sum() / both["floor_area_m2"].sum(),
                )
                res.put(
                    "median_investment_per_m2",
                    geo,
                    u,
                    y,
                    float(np.median(both["investment_usd"] / both["floor_area_m2"])),
                )
        # housing permit density: years in which a construction permit was resolved (NEW: none -> no value)
        hf = sheets.get("housing_permit_density", {}).get("formula", "")
        if re.search(r"sin valor un año en que no aprob", hf):  # the sheet: years with an approved permit
            dyears = [int(y) for y in sorted(ap["ryear"].dropna().astype(int).unique())]
            drule = "years in which a construction permit was approved (the sheet)"
        else:  # issue 20's wording: years in which a construction permit was resolved
            dyears = [int(y) for y in sorted(k.loc[k["resolved_ok"], "ryear"].dropna().astype(int).unique())]
            drule = "years in which a construction permit was resolved (issue 20; the sheet states no rule)"
        if geo == GEO07:
            res.notes["housing_permit_density"].append(f"values in {drule}: {dyears}")
        hc = ap[ap["use_class"] == "habitacional"].groupby(["u", "ryear"]).size()
        area = defaultdict(float)
        for c in raw.codes:
            area[m[c]] += raw.area_official[c]
        for y in dyears:
            for u in units:
                res.put("housing_permit_density", geo, u, y, hc.get((u, y), 0) / area[u])
        if alt is not None:  # previous reading: every year with any approved file (either procedure)
            for y in sorted(pm.loc[pm["approved"], "ryear"].dropna().astype(int).unique()):
                for u in units:
                    alt.put("housing_permit_density", geo, u, y, hc.get((u, y), 0) / area[u])
    bar()

    # compatibility with the plan
    comp = pd.read_csv(REPO / "zoning" / "compatibility.csv", dtype=str).set_index("uso")
    zman = manifest(raw.sample, "esquema_director")
    zones = gpd.read_file(raw.sample / zman["source"]["path"])
    zones["cls"] = zones[zman["fields"]["source_code"]].str.strip().str.upper().map(PLAN_CLASSES)
    ap = pm[(pm["kind"] == PC) & pm["approved"] & pm["resolved"].notna()].copy()
    apm = ap.to_crs(zones.crs)
    j = gpd.sjoin(apm[["geometry"]], zones[["cls", "geometry"]], how="left", predicate="intersects")
    j = j[~j.index.duplicated(keep="first")]
    ap["cls"] = j["cls"]

    def status(r):
        if pd.isna(r["cls"]) or r["use_class"] not in comp.index or r["cls"] not in comp.columns:
            return None
        return comp.loc[r["use_class"], r["cls"]] in ("compatible", "conditional")

    ap["compat"] = ap.apply(status, axis=1)
    ev = ap[ap["compat"].notna()]
    for geo, m in both_geos(raw):
        ev_u = ev.assign(u=ev["municipality_code"].map(m))
        for (u, y), g in ev_u.groupby(["u", "ryear"]):
            res.put("permits_compatible_share", geo, u, y, 100.0 * g["compat"].astype(bool).sum() / len(g))
    bar()

    # complaints without a permit nearby
    _, cp = raw.complaints()
    cpm = cp.to_crs(METRIC)
    apx = ap.to_crs(METRIC)
    dist, days = st["complaint_permit_distance_m"], st["complaint_permit_days"]
    covered = []
    for _, r in cpm.iterrows():
        d = apx.geometry.distance(r.geometry)
        lag = (r["date"] - apx["submitted"]).dt.days
        covered.append(bool(((d <= dist) & (lag >= 0) & (lag <= days)).any()))
    cp["covered"] = covered
    for geo, m in both_geos(raw):
        cu = cp.assign(u=cp["municipality_code"].map(m))
        for (u, y), g in cu.groupby(["u", "year"]):
            res.put("complaints_without_permit_share", geo, u, y, 100.0 * (~g["covered"]).sum() / len(g))
    bar()

    # hazard zones: dating per the sheet (submission or resolution year)
    f = sheets.get("permits_in_hazard_zones", {}).get("formula", "")
    by = "syear" if "ingreso" in f and "resoluci" not in f else "ryear"
    res.notes["permits_in_hazard_zones"].append(
        f"dated by {'submission' if by == 'syear' else 'resolution'} year (the sheet: …{f[-40:]})"
    )
    fman = manifest(raw.sample, "inundacion_100a")
    lman = manifest(raw.sample, "susceptibilidad_deslizamientos")
    with (
        rasterio.open(raw.sample / fman["source"]["path"]) as fr,
        rasterio.open(raw.sample / lman["source"]["path"]) as lr,
    ):

        def sample(r, gdf):
            pts = gdf.to_crs(r.crs)
            vals = np.array([v[0] for v in r.sample([(p.x, p.y) for p in pts.geometry])], dtype=float)
            inside = np.array(
                [
                    (r.bounds.left <= p.x < r.bounds.right) and (r.bounds.bottom < p.y <= r.bounds.top)
                    for p in pts.geometry
                ]
            )
            vals[~inside] = np.nan
            if r.nodata is not None:
                vals[vals == r.nodata] = np.nan
            return vals

        fd = sample(fr, ap)
        ls = sample(lr, ap)
    ap["hazard"] = (np.nan_to_num(fd, nan=0) > 0.5) | (np.nan_to_num(ls, nan=0) >= 4)
    ap["hy"] = ap[by]
    hyears = sorted(ap["hy"].dropna().astype(int).unique())
    for geo, m in both_geos(raw):
        au = ap.assign(u=ap["municipality_code"].map(m))
        hz = au[au["hazard"]]
        for y in hyears:
            for u in sorted(set(m.values())):
                g = hz[(hz["u"] == u) & (hz["hy"] == y)]
                res.put("permits_in_hazard_zones", geo, u, y, float(len(g)))
                fa = g["floor_area_m2"].dropna()
                if len(g) == 0 or len(fa):
                    res.put("floor_area_in_hazard_zones", geo, u, y, float(fa.sum()))
        if alt is not None:  # the other dating (submission <-> resolution), for the diagnosis only
            oy = "ryear" if by == "syear" else "syear"
            for y in sorted(au[oy].dropna().astype(int).unique()):
                for u in sorted(set(m.values())):
                    g = hz[(hz["u"] == u) & (hz[oy] == y)]
                    alt.put("permits_in_hazard_zones", geo, u, y, float(len(g)))
                    fa = g["floor_area_m2"].dropna()
                    if len(g) == 0 or len(fa):
                        alt.put("floor_area_in_hazard_zones", geo, u, y, float(fa.sum()))
    bar()


def statistical(res: Results, raw: Raw, bar):
    S = raw.stat_table
    AGE = [
        "poblacion_0_14_hombres",
        "poblacion_15_64_hombres",
        "poblacion_65_mas_hombres",
        "poblacion_0_14_mujeres",
        "poblacion_15_64_mujeres",
        "poblacion_65_mas_mujeres",
    ]
    t = S(AGE)
    t = t.dropna()

    def dd(series):
        return {(c, int(p)): float(v) for (c, p), v in series.items() if pd.notna(v)}

    tot = t[AGE].sum(axis=1)
    ratio_by_unit(
        res,
        "dependency_ratio",
        raw,
        dd(t[AGE[0]] + t[AGE[2]] + t[AGE[3]] + t[AGE[5]]),
        dd(t[AGE[1]] + t[AGE[4]]),
        100,
    )
    ratio_by_unit(res, "sex_ratio", raw, dd(t[AGE[:3]].sum(axis=1)), dd(t[AGE[3:]].sum(axis=1)), 100)
    # growth between consecutive censuses, dated at the later one
    P = dd(tot)
    for geo, m in both_geos(raw):
        agg = defaultdict(float)
        n = defaultdict(int)
        for (c, p), v in P.items():
            agg[(m[c], p)] += v
            n[(m[c], p)] += 1
        units = sorted(set(m.values()))
        for u in units:
            need = sum(1 for c in raw.codes if m[c] == u)
            ps = sorted(p for (uu, p) in agg if uu == u and n[(uu, p)] == need)
            for s_, t_ in itertools.pairwise(ps):
                res.put(
                    "population_growth_rate",
                    geo,
                    u,
                    t_,
                    100 * ((agg[(u, t_)] / agg[(u, s_)]) ** (1 / (t_ - s_)) - 1),
                )
    pairs = {
        "school_attendance_rate": ("asisten_4_17", "poblacion_4_17", 100, None),
        "literacy_rate": ("alfabetos_10_mas", "poblacion_10_mas", 100, None),
        "employment_rate": ("ocupados_16_mas", "poblacion_16_mas", 100, None),
        "piped_water_coverage": ("viviendas_agua_caneria", "viviendas", 100, None),
        "sewer_coverage": ("viviendas_alcantarillado", "viviendas", 100, None),
        "electricity_coverage": ("viviendas_electricidad", "viviendas", 100, None),
        "overcrowding_rate": ("hogares_hacinamiento", "hogares", 100, None),
        "poverty_rate": ("hogares_pobreza", "hogares", 100, None),
        "businesses_per_1000": ("establecimientos", "poblacion_estimada", 1000, None),
        "employees_per_business": ("personal_ocupado", "establecimientos", 1, None),
    }
    for ind, (a, b, k, _) in pairs.items():
        tb = S([a, b]).dropna()
        if a in tb and b in tb:
            ratio_by_unit(res, ind, raw, dd(tb[a]), dd(tb[b]), k)
    tb = S(["pea_16_mas", "ocupados_16_mas"]).dropna()
    ratio_by_unit(
        res, "unemployment_rate", raw, dd(tb["pea_16_mas"] - tb["ocupados_16_mas"]), dd(tb["pea_16_mas"]), 100
    )
    bar()

    # equity: population-weighted Gini / Theil T across the units (only periods where all have a value)
    def gini(x, w):
        x, w = np.asarray(x, float), np.asarray(w, float)
        mu = (w * x).sum() / w.sum()
        return (w[:, None] * w[None, :] * np.abs(x[:, None] - x[None, :])).sum() / (2 * w.sum() ** 2 * mu)

    def theil(x, w):
        x, w = np.asarray(x, float), np.asarray(w, float)
        mu = (w * x).sum() / w.sum()
        s = x / mu
        return float((w / w.sum() * np.where(s > 0, s * np.log(np.where(s > 0, s, 1)), 0)).sum())

    for ind, (a, b) in {
        "poverty": ("hogares_pobreza", "hogares"),
        "access": ("viviendas_agua_caneria", "viviendas"),
    }.items():
        tb = S([a, b]).dropna()
        for p in sorted({p for _, p in tb.index}):
            for geo, m in both_geos(raw):
                num, den, pop, _cnt = (
                    defaultdict(float),
                    defaultdict(float),
                    defaultdict(float),
                    defaultdict(int),
                )
                okp = True
                for c in raw.codes:
                    if (c, p) not in tb.index or (c, p) not in tot.index:
                        okp = False
                        break
                    u = m[c]
                    num[u] += tb.loc[(c, p), a]
                    den[u] += tb.loc[(c, p), b]
                    pop[u] += tot.loc[(c, p)]
                if not okp:
                    continue
                units = sorted(num)
                x = [num[u] / den[u] for u in units]
                w = [pop[u] for u in units]
                res.put(f"{ind}_gini", geo, "AMSS", p, gini(x, w))
                if ind == "poverty":
                    res.put("poverty_theil", geo, "AMSS", p, theil(x, w))
                    if geo == GEO07:
                        xs, ws = np.array(x), np.array(w)
                        mu = (ws * xs).sum() / ws.sum()
                        groups = defaultdict(list)
                        for i, u in enumerate(units):
                            groups[raw.to24[u]].append(i)
                        tb_, tw_ = 0.0, 0.0
                        for gidx in groups.values():
                            wg = ws[gidx].sum()
                            mg = (ws[gidx] * xs[gidx]).sum() / wg
                            tb_ += wg / ws.sum() * (mg / mu) * math.log(mg / mu)
                            tw_ += (wg * mg) / (ws.sum() * mu) * theil(xs[gidx], ws[gidx])
                        res.put("poverty_theil_between", geo, "AMSS", p, tb_)
                        res.put("poverty_theil_within", geo, "AMSS", p, tw_)
    bar()


def pixel_areas_lonlat(transform, nrows, ncols):
    from pyproj import Geod

    geod = Geod(ellps="WGS84")
    areas = np.empty(nrows)
    for i in range(nrows):
        x0, y0 = transform * (0, i)
        x1, y1 = transform * (1, i + 1)
        a, _ = geod.polygon_area_perimeter([x0, x1, x1, x0], [y0, y0, y1, y1])
        areas[i] = abs(a)
    return areas


def zonal_cells(raster_path, polys_gdf):
    """Per polygon: (cell index array, coverage fraction array) by exact coverage (exactextract)."""
    from exactextract import exact_extract

    out = exact_extract(str(raster_path), polys_gdf, ["cell_id", "coverage"], output="pandas")
    return [
        (np.asarray(a, dtype=np.int64), np.asarray(b, dtype=float))
        for a, b in zip(out["cell_id"], out["coverage"], strict=False)
    ]


def density_env_risk(res: Results, raw: Raw, sheets: dict, bar):
    import geopandas as gpd
    import rasterio

    mun = raw.munis
    mun_m = raw.munis_m
    # population density (official area) and urbanised density
    for geo, m in both_geos(raw):
        pop, area = defaultdict(float), defaultdict(float)
        for c in raw.codes:
            pop[m[c]] += raw.pop07[c]
            area[m[c]] += raw.area_official[c]
        for u in pop:
            res.put("population_density", geo, u, 2007, pop[u] / area[u])
    zman = manifest(raw.sample, "esquema_director")
    zones = gpd.read_file(raw.sample / zman["source"]["path"]).to_crs(METRIC)
    zones["cls"] = zones[zman["fields"]["source_code"]].str.strip().str.upper().map(PLAN_CLASSES)
    version = str(zones[zman["fields"]["plan_version"]].iloc[0])
    plan_year = int(re.search(r"(\d{4})", version).group(1))
    urb = zones[zones["cls"].isin(URBANISED)].union_all()
    urb_ha = {c: g.intersection(urb).area / 1e4 for c, g in zip(mun_m["code"], mun_m.geometry, strict=False)}
    cls_area = {}
    for c, g in zip(mun_m["code"], mun_m.geometry, strict=False):
        inter = zones.geometry.intersection(g)
        cls_area[c] = inter.area.groupby(zones["cls"]).sum().to_dict()
    for geo, m in both_geos(raw):
        pop, ha, ca = defaultdict(float), defaultdict(float), defaultdict(lambda: defaultdict(float))
        for c in raw.codes:
            pop[m[c]] += raw.pop07[c]
            ha[m[c]] += urb_ha[c]
            for k, v in cls_area[c].items():
                ca[m[c]][k] += v
        for u in pop:
            res.put("population_density_urbanised", geo, u, 2007, pop[u] / ha[u])
            areas = np.array([v for v in ca[u].values() if v > 0])
            p = areas / areas.sum()
            res.put(
                "land_use_mix", geo, u, plan_year, float(-(p * np.log(p)).sum() / math.log(N_PLAN_CLASSES))
            )
    bar()

    # land cover: built-up (50) and green (10, 20, 30), pixel areas on the ellipsoid
    lman = manifest(raw.sample, "cobertura_suelo")
    lc_path = raw.sample / lman["source"]["path"]
    cat_year = tomllib.loads((REPO / "layers/rasters/land_cover.toml").read_text()).get("year")
    with rasterio.open(lc_path) as r:
        lc = r.read(1)
        nod = r.nodata
        parea = pixel_areas_lonlat(r.transform, r.height, r.width)
        ncols = r.width
        lc_crs = r.crs
    cells = zonal_cells(lc_path, mun.to_crs(lc_crs))
    flat = lc.ravel()
    built, green, known = {}, {}, {}
    for c, (ids, cov) in zip(mun["code"], cells, strict=False):
        v = flat[ids]
        a = cov * parea[ids // ncols]
        built[c] = a[v == 50].sum()
        green[c] = a[np.isin(v, [10, 20, 30])].sum()
        known[c] = a[(v != nod) & (v != 0)].sum()
    for geo, m in both_geos(raw):
        pop, b, g, k = defaultdict(float), defaultdict(float), defaultdict(float), defaultdict(float)
        for c in raw.codes:
            u = m[c]
            pop[u] += raw.pop07[c]
            b[u] += built[c]
            g[u] += green[c]
            k[u] += known[c]
        for u in pop:
            res.put("built_up_density", geo, u, cat_year, pop[u] / (b[u] / 1e6))
            res.put("green_cover_share", geo, u, cat_year, 100 * g[u] / k[u])
            res.put("green_area_per_inhabitant", geo, u, cat_year, g[u] / pop[u])
    bar()

    # hazards
    cells_pop, pop_period = raw.population_cells()
    fman = manifest(raw.sample, "inundacion_100a")
    sman = manifest(raw.sample, "susceptibilidad_deslizamientos")
    fpath = raw.sample / fman["source"]["path"]
    spath = raw.sample / sman["source"]["path"]
    flood_year = tomllib.loads((REPO / "layers/rasters/flood_depth_100y.toml").read_text()).get("year")
    with rasterio.open(fpath) as r:
        fd = r.read(1).astype(float).ravel()
        fnod = r.nodata
        fcrs = r.crs
        fpa = abs(r.transform.a * r.transform.e)
    with rasterio.open(spath) as r:
        sl = r.read(1).astype(float).ravel()
        snod = r.nodata
        spa = abs(r.transform.a * r.transform.e)
    flooded = (fd > 0.5) & (fd != fnod)
    high = (sl >= 4) & (sl != snod)
    # flooded area per municipality
    farea = {}
    for c, (ids, cov) in zip(mun["code"], zonal_cells(fpath, mun.to_crs(fcrs)), strict=False):
        farea[c] = (cov[flooded[ids]] * fpa).sum() / 1e6
    cpm = cells_pop.to_crs(fcrs)
    carea = cpm.geometry.area.to_numpy()
    fex = np.array([(cov[flooded[ids]] * fpa).sum() for ids, cov in zonal_cells(fpath, cpm)]) / carea
    lex = np.array([(cov[high[ids]] * spa).sum() for ids, cov in zonal_cells(spath, cpm)]) / carea
    cells_pop["fexp"] = cells_pop["population"] * fex
    cells_pop["lexp"] = cells_pop["population"] * lex
    for geo, m in both_geos(raw):
        cu = cells_pop.assign(u=cells_pop["municipality_code"].map(m))
        g = cu.groupby("u")[["population", "fexp", "lexp"]].sum()
        fa = defaultdict(float)
        for c in raw.codes:
            fa[m[c]] += farea[c]
        for u, r_ in g.iterrows():
            res.put("flood_exposed_population_100y", geo, u, pop_period, r_["fexp"])
            res.put(
                "flood_exposed_population_share_100y", geo, u, pop_period, 100 * r_["fexp"] / r_["population"]
            )
            res.put("landslide_high_population", geo, u, pop_period, r_["lexp"])
            res.put(
                "landslide_high_population_share", geo, u, pop_period, 100 * r_["lexp"] / r_["population"]
            )
        for u in fa:
            res.put("flood_exposed_area_100y", geo, u, flood_year, fa[u])
    bar()
    return cells_pop, pop_period


def services_mobility(
    res: Results, raw: Raw, cells_pop, pop_period, bar, alt: Results | None = None, sheets: dict | None = None
):
    import geopandas as gpd
    import shapely
    from shapely.geometry import LineString

    _mun, mun_m = raw.munis, raw.munis_m
    popcell = cells_pop.groupby("municipality_code")["population"].sum().to_dict()
    # facilities
    man, sch = raw.csv_points("centros_escolares_mined")
    sub_src, sub_spec = field_source(man["fields"]["subtype"])
    sch = sch[sch[col(sch, sub_src)].isin(sub_spec["values"].keys())]
    sch = raw.place(sch[["geometry"]])
    hman = manifest(raw.sample, "establecimientos_minsal")
    h = gpd.read_file(raw.sample / hman["source"]["path"])
    tsrc, tspec = field_source(hman["fields"]["type"])
    h = h[h[tsrc].isin(tspec["values"].keys())]
    h = raw.place(h[["geometry"]])
    pman = manifest(raw.sample, "espacios_publicos")
    ps = gpd.read_file(raw.sample / pman["source"]["path"], layer=pman["source"].get("layer"))
    psrc, pspec = field_source(pman["fields"]["type"])
    ps = ps[ps[psrc].isin(pspec["values"].keys())].to_crs(METRIC)
    ps_union = ps.union_all()
    ps_area = {c: g.intersection(ps_union).area for c, g in zip(mun_m["code"], mun_m.geometry, strict=False)}
    nsch = sch.groupby("municipality_code").size().to_dict()
    nh = h.groupby("municipality_code").size().to_dict()
    for geo, m in both_geos(raw):
        pop, a, s, hh = defaultdict(float), defaultdict(float), defaultdict(float), defaultdict(float)
        for c in raw.codes:
            u = m[c]
            pop[u] += raw.pop07[c]
            a[u] += ps_area[c]
            s[u] += nsch.get(c, 0)
            hh[u] += nh.get(c, 0)
        for u in pop:
            res.put("public_space_per_inhabitant", geo, u, 2007, a[u] / pop[u])
            res.put("schools_per_10k", geo, u, 2007, 1e4 * s[u] / pop[u])
            res.put("health_facilities_per_10k", geo, u, 2007, 1e4 * hh[u] / pop[u])
    bar()

    # transit routes: each route once, the union of its geometries (NEW definition, issue 20)
    routes = {}
    gman = manifest(raw.sample, "gtfs_rutas")
    with zipfile.ZipFile(raw.sample / gman["source"]["path"]) as z:
        rt = pd.read_csv(z.open("routes.txt"), dtype=str)
        tr = pd.read_csv(z.open("trips.txt"), dtype=str)
        sh = pd.read_csv(z.open("shapes.txt"), dtype={"shape_id": str})
    sh = sh.sort_values(["shape_id", "shape_pt_sequence"])
    lines = {
        sid: LineString(list(zip(g["shape_pt_lon"], g["shape_pt_lat"], strict=False)))
        for sid, g in sh.groupby("shape_id")
    }
    for rid, g in tr.groupby("route_id"):
        if rid in set(rt["route_id"]):
            routes[("gtfs", rid)] = [lines[s] for s in g["shape_id"].dropna().unique() if s in lines]
    mman = manifest(raw.sample, "rutas_microbus")
    mb = gpd.read_file(raw.sample / mman["source"]["path"])
    rid_col = mman["fields"]["route_id"]
    for rid, g in mb.groupby(rid_col):
        parts = []
        for geom in g.geometry:
            parts.extend(
                shapely.get_parts(geom) if geom.geom_type.startswith(("Multi", "Geometry")) else [geom]
            )
        routes[("microbus", rid)] = [p for p in parts if p.geom_type in ("LineString", "MultiLineString")]
    rg = gpd.GeoDataFrame(
        {"route": list(routes)},
        geometry=[shapely.MultiLineString(v) if len(v) else None for v in routes.values()],
        crs="EPSG:4326",
    ).to_crs(METRIC)
    naive = list(rg.geometry)
    # the sheet (48842ae): "la longitud de una ruta es la de la unión de sus trazados: sus dos sentidos
    # por la misma calle cuentan una vez (líneas a menos de 15 m son la misma calle, medido en
    # EPSG:32616)". Read as: each trace in the order drawn adds only its parts farther than the
    # tolerance from the traces before it. Without a tolerance on the sheet: the plain union.
    f = (sheets or {}).get("transit_route_length_per_10k", {}).get("formula", "")
    mt = re.search(r"a menos de (\d+(?:[.,]\d+)?) ?m\b", f)
    tol = float(mt.group(1).replace(",", ".")) if mt else 0.0

    def route_length_geom(g, tol, order=None):
        parts = list(shapely.get_parts(g))
        if order == "shortest":
            parts.sort(key=lambda x: x.length)
        if tol <= 0 or len(parts) < 2:
            return shapely.union_all(parts)
        kept, seen = [parts[0]], parts[0]
        for t in parts[1:]:
            kept.append(t.difference(seen.buffer(tol)))
            seen = seen.union(t)
        return shapely.union_all(kept)

    counted = [route_length_geom(g, tol) for g in rg.geometry]
    res.notes["transit_route_length_per_10k"].append(
        f"{len(rg)} routes: {sum(g.length for g in naive) / 1000:.1f} km as drawn, "
        f"{sum(shapely.union_all(shapely.get_parts(g)).length for g in naive) / 1000:.1f} km as the plain union of each route's traces, "
        f"{sum(g.length for g in counted) / 1000:.1f} km counted (traces within {tol:g} m of an earlier one of the route count once"
        + ("; tolerance from the sheet)" if mt else "; the sheet gives no tolerance)")
    )
    variants = [("counted", counted, res)]
    if alt is not None:
        variants += [("as drawn", naive, alt)]
        if tol > 0:
            variants += [
                ("shortest first", [route_length_geom(g, tol, "shortest") for g in rg.geometry], None)
            ]
    for _label, geoms, target in variants:
        rlen = defaultdict(float)
        for c, poly in zip(mun_m["code"], mun_m.geometry, strict=False):
            rlen[c] = float(sum(g.intersection(poly).length for g in geoms)) / 1000
        for geo, m in both_geos(raw):
            L, P = defaultdict(float), defaultdict(float)
            for c in raw.codes:
                L[m[c]] += rlen[c]
                P[m[c]] += popcell.get(c, 0)
            for u in L:
                if target is not None:
                    target.put("transit_route_length_per_10k", geo, u, pop_period, 1e4 * L[u] / P[u])
                else:
                    res.notes.setdefault("_shortest_first", []).append(
                        (geo, u, pop_period, 1e4 * L[u] / P[u])
                    )
    bar()

    # streets
    sman = manifest(raw.sample, "calles_osm")
    st = gpd.read_file(raw.sample / sman["source"]["path"]).to_crs(METRIC)
    speriod = sman["fields"].get("period", {}).get("value")
    slen = {
        c: float(st.geometry.intersection(poly).length.sum()) / 1000
        for c, poly in zip(mun_m["code"], mun_m.geometry, strict=False)
    }
    parea = {c: poly.area / 1e6 for c, poly in zip(mun_m["code"], mun_m.geometry, strict=False)}
    coords = shapely.get_coordinates(st.geometry)
    counts = shapely.get_num_coordinates(st.geometry.values)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    last = first + counts - 1
    ends = np.round(np.vstack([coords[first], coords[last]]))
    key, deg = np.unique(ends, axis=0, return_counts=True)
    inter = key[deg >= 3]
    pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy(inter[:, 0], inter[:, 1]), crs=METRIC)
    j = gpd.sjoin(pts, mun_m[["code", "geometry"]], how="inner", predicate="within")
    nint = j.groupby("code").size().to_dict()
    for geo, m in both_geos(raw):
        L, A, N = defaultdict(float), defaultdict(float), defaultdict(float)
        for c in raw.codes:
            L[m[c]] += slen[c]
            A[m[c]] += parea[c]
            N[m[c]] += nint.get(c, 0)
        for u in L:
            res.put("street_density", geo, u, speriod, L[u] / A[u])
            res.put("intersection_density", geo, u, speriod, N[u] / A[u])
    bar()


def accessibility(res: Results, raw: Raw, cells_pop, pop_period, bar):
    """Network accessibility (sheets: walking distance along the undirected street network, segment ends
    on a 1 m grid; cell's interior point -> nearest node + network + target's node -> target)."""
    import geopandas as gpd
    import networkx as nx
    import shapely
    from scipy.spatial import cKDTree

    sman = manifest(raw.sample, "calles_osm")
    st = gpd.read_file(raw.sample / sman["source"]["path"]).to_crs(METRIC)
    coords = shapely.get_coordinates(st.geometry)
    counts = shapely.get_num_coordinates(st.geometry.values)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    last = first + counts - 1
    a = np.round(coords[first])
    b = np.round(coords[last])
    allk, inv = np.unique(np.vstack([a, b]), axis=0, return_inverse=True)
    inv = inv.ravel()
    ia, ib = inv[: len(a)], inv[len(a) :]
    G = nx.Graph()
    for u, v, w in zip(ia, ib, st.geometry.length.to_numpy(), strict=False):
        u, v = int(u), int(v)
        if G.has_edge(u, v):
            G[u][v]["w"] = min(G[u][v]["w"], w)
        else:
            G.add_edge(u, v, w=float(w))
    tree = cKDTree(allk)
    cells_pop.to_crs(METRIC)
    rp = cells_pop.geometry.representative_point().to_crs(METRIC)
    cxy = np.column_stack([rp.x, rp.y])
    cd, cn = tree.query(cxy)

    def covered(target_xy: np.ndarray, threshold: float) -> np.ndarray:
        td, tn = tree.query(target_xy)
        src = {}
        for d, n in zip(td, tn, strict=False):
            src[int(n)] = min(src.get(int(n), np.inf), float(d))
        H = G.copy()
        for n, d in src.items():
            H.add_edge("SRC", n, w=d)
        dist = nx.single_source_dijkstra_path_length(H, "SRC", cutoff=threshold, weight="w")
        nd = np.array([dist.get(int(n), np.inf) for n in cn])
        return (nd + cd) <= threshold

    def put(ind, mask):
        for geo, m in both_geos(raw):
            cu = cells_pop.assign(u=cells_pop["municipality_code"].map(m), cov=cells_pop["population"] * mask)
            g = cu.groupby("u")[["population", "cov"]].sum()
            for u, r_ in g.iterrows():
                res.put(ind, geo, u, pop_period, 100 * r_["cov"] / r_["population"])

    gman = manifest(raw.sample, "gtfs_paradas")
    with zipfile.ZipFile(raw.sample / gman["source"]["path"]) as z:
        stops = pd.read_csv(z.open("stops.txt"), dtype=str)
    if "location_type" in stops:
        stops = stops[stops["location_type"].fillna("0").isin(["0", ""])]
    sg = gpd.GeoDataFrame(
        geometry=gpd.points_from_xy(stops["stop_lon"].astype(float), stops["stop_lat"].astype(float)),
        crs="EPSG:4326",
    )
    sg = raw.place(sg).to_crs(METRIC)
    put("transit_stop_access_500m", covered(np.column_stack([sg.geometry.x, sg.geometry.y]), 500.0))
    bar()
    man, sch = raw.csv_points("centros_escolares_mined")
    sub_src, sub_spec = field_source(man["fields"]["subtype"])
    sch = raw.place(sch[sch[col(sch, sub_src)].isin(sub_spec["values"].keys())][["geometry"]]).to_crs(METRIC)
    put("school_access_1km", covered(np.column_stack([sch.geometry.x, sch.geometry.y]), 1000.0))
    hman = manifest(raw.sample, "establecimientos_minsal")
    h = gpd.read_file(raw.sample / hman["source"]["path"])
    tsrc, tspec = field_source(hman["fields"]["type"])
    h = raw.place(h[h[tsrc].isin(tspec["values"].keys())][["geometry"]]).to_crs(METRIC)
    put("health_access_1km", covered(np.column_stack([h.geometry.x, h.geometry.y]), 1000.0))
    bar()
    pman = manifest(raw.sample, "espacios_publicos")
    ps = gpd.read_file(raw.sample / pman["source"]["path"], layer=pman["source"].get("layer"))
    psrc, pspec = field_source(pman["fields"]["type"])
    ps = ps[ps[psrc].isin(pspec["values"].keys())].to_crs(METRIC)
    rings = shapely.get_rings(shapely.get_parts(ps.geometry.values))
    gates = shapely.get_coordinates(shapely.segmentize(rings, 25.0))
    put("public_space_access_400m", covered(gates, 400.0))
    bar()


def hotspots(res: Results, raw: Raw, cells: pd.DataFrame | None, cells_pop, bar, sheets: dict | None = None):
    """population_in_hotspots_share: Gi* (binary H3 ring-1 weights with the focal cell) of the published
    incident counts per H3 r8 hexagon (withheld hexagons count 0), p = normal upper tail of |z|,
    Benjamini-Hochberg cut-off as esda.fdr computes it (alpha 0.05), hot = z > 0 and p under it;
    the share of each municipality's population-cell people whose centre's hexagon is hot.
    Which hexagons are published is the disclosure module's choice: read from the store's
    incident_cells (their counts are checked against the raw incidents here). The lattice ("todas
    las celdas del AMSS", not defined further on the sheet): hexagons whose centre lies in a
    municipality, plus every hexagon published in any year."""
    import h3
    import shapely
    from scipy.stats import norm

    sheets = sheets or {}
    if cells is None or cells.empty:
        res.notes["population_in_hotspots_share"].append("no incident_cells in the store: not recomputed")
        return
    _, inc = raw.incidents()
    inc["hex"] = [h3.latlng_to_cell(p.y, p.x, 8) for p in inc.geometry]
    raw_counts = inc.groupby(["hex", "municipality_code", "year"]).size()
    same = sum(
        int(raw_counts.get((h, c, int(y)), -1) == int(n))
        for h, c, y, n in zip(
            cells["h3_cell"], cells["municipality_code"], cells["year"], cells["incidents"], strict=True
        )
    )
    res.notes["population_in_hotspots_share"].append(
        f"published incident cells whose count the raw incidents reproduce: {same} of {len(cells)}"
    )
    if same != len(cells):
        res.failures.append(
            f"{len(cells) - same} published incident cells differ from the raw incidents' counts"
        )
    f = sheets.get("population_in_hotspots_share", {}).get("formula", "")
    perm = re.search(r"permutaci[oó]n condicional \(([\d,.]+) permutaciones, semilla fija (\d+)", f)
    centre = set()
    if perm:  # the sheet (94a2bb3): centres in the union of the municipalities
        for poly in shapely.get_parts(shapely.union_all(list(raw.munis.geometry))):
            centre |= set(h3.geo_to_cells(poly.__geo_interface__, 8))
    else:
        for g in raw.munis.geometry:
            for poly in shapely.get_parts(g):
                centre |= set(h3.geo_to_cells(poly.__geo_interface__, 8))
    lattice = sorted(centre | set(cells["h3_cell"]))
    idx = {h: i for i, h in enumerate(lattice)}
    nbrs = [[idx[k] for k in h3.grid_disk(h, 1) if k in idx] for h in lattice]
    n = len(lattice)
    W = np.array([len(nb) for nb in nbrs], float)
    cp = cells_pop.copy()
    cen = cp.geometry.representative_point() if perm else cp.geometry.centroid
    cp["hex"] = [h3.latlng_to_cell(p.y, p.x, 8) for p in cen]
    if perm:
        # conditional permutation as the sheet states it: esda.G_Local (star, binary ring-1 weights)
        # with its permutations and seed -- the library draws the permutations, so only it can give
        # the same p; p two-sided from the simulated G* (+1 rule), BH cut-off by esda.fdr, hot = the
        # neighbours' sum above k x the mean of the other cells and p under the cut-off
        from esda import G_Local, fdr
        from libpysal.weights import W as PysalW

        nperm, seed = int(perm.group(1).replace(",", "").replace(".", "")), int(perm.group(2))
        others = {i: [j for j in nb if j != i] for i, nb in enumerate(nbrs)}
        w = PysalW(others, silence_warnings=True)
        res.notes["population_in_hotspots_share"].append(
            f"Gi* by conditional permutation (esda.G_Local, {nperm} permutations, seed {seed}; the sheet)"
        )
    for y in sorted(inc["year"].unique()):
        pub = cells[cells["year"] == y].groupby("h3_cell")["incidents"].sum()
        x = np.array([pub.get(h, 0) for h in lattice], float)
        if perm:
            g_ = G_Local(
                x, w, transform="B", permutations=nperm, star=True, keep_simulations=True, n_jobs=1, seed=seed
            )
            sims, obs = g_.rGs, g_.Gs
            pge = ((sims >= obs[:, None]).sum(1) + 1) / (nperm + 1)
            ple = ((sims <= obs[:, None]).sum(1) + 1) / (nperm + 1)
            p = np.minimum(1, 2 * np.minimum(pge, ple))
            cut = fdr(p, 0.05)
            k = np.array([len(others[i]) for i in range(n)])
            lag_o = np.array([x[others[i]].sum() for i in range(n)])
            zs = lag_o - k * (x.sum() - x) / (n - 1)
            hot = {lattice[i] for i in range(n) if zs[i] > 0 and p[i] < cut}
        else:
            lag = np.array([x[nb].sum() for nb in nbrs])
            xb = x.mean()
            sd = math.sqrt((x**2).mean() - xb**2)
            if sd == 0:
                hot = set()
            else:
                z = (lag - xb * W) / (sd * np.sqrt(W * (n - W) / (n - 1)))
                p = norm.sf(np.abs(z))
                ps = np.sort(p)[::-1]
                k = np.arange(n, 0, -1) * 0.05 / n
                sig = np.nonzero(ps < k)[0]
                cut = k[sig[0]] if len(sig) else 0.001 * 0.05
                hot = {lattice[i] for i in range(n) if z[i] > 0 and p[i] < cut}
        for geo, m in both_geos(raw):
            d = cp.assign(u=cp["municipality_code"].map(m), hp=cp["population"] * cp["hex"].isin(hot))
            g = d.groupby("u")[["population", "hp"]].sum()
            for u, r_ in g.iterrows():
                res.put("population_in_hotspots_share", geo, u, int(y), 100 * r_["hp"] / r_["population"])
    bar()


STATIC = (
    "population_density",
    "population_density_urbanised",
    "land_use_mix",
    "built_up_density",
    "green_cover_share",
    "green_area_per_inhabitant",
    "flood_exposed_area_100y",
    "flood_exposed_population_100y",
    "flood_exposed_population_share_100y",
    "landslide_high_population",
    "landslide_high_population_share",
    "public_space_per_inhabitant",
    "schools_per_10k",
    "health_facilities_per_10k",
    "transit_route_length_per_10k",
    "street_density",
    "intersection_density",
    *NETWORK,
)


def layer_periods(raw: Raw) -> dict[str, int]:
    """The period of each non-yearly input, from the files and the catalogue (never the store)."""
    out = {"municipalities": 2007}  # the census population the municipalities carry (population_2007)
    out["population"] = int(manifest(raw.sample, "poblacion")["fields"]["period"]["value"])
    out["streets"] = int(manifest(raw.sample, "calles_osm")["fields"]["period"]["value"])
    for layer in ("land_cover", "flood_depth_100y", "landslide_susceptibility"):
        y = tomllib.loads((REPO / "layers" / "rasters" / f"{layer}.toml").read_text()).get("year")
        if y:
            out[layer] = int(y)
    import geopandas as gpd

    zman = manifest(raw.sample, "esquema_director")
    v = str(gpd.read_file(raw.sample / zman["source"]["path"])[zman["fields"]["plan_version"]].iloc[0])
    out["zoning"] = int(re.search(r"(\d{4})", v).group(1))
    return out


def redate(res: Results, raw: Raw, sheets: dict) -> None:
    """Sheets with the rule "si ningún insumo es anual, el más reciente de los periodos de sus insumos":
    a non-yearly indicator is dated by the latest period of the inputs its sheet lists."""
    lp = layer_periods(raw)
    moved = []
    for ind in STATIC:
        sh = sheets.get(ind, {})
        rule = str(sh.get("period_rule", ""))
        if "más reciente" not in rule:
            continue
        ps = [lp[i] for i in sh.get("inputs", []) if i in lp]
        if not ps:
            continue
        new = max(ps)
        for k in [k for k in res.v if k[0] == ind and k[3] != new]:
            res.v[(k[0], k[1], k[2], new)] = res.v.pop(k)
            moved.append(ind)
    if moved:
        res.notes["dating"].append(
            "non-yearly indicators dated by their inputs' latest period (sheets' period_rule; inputs "
            + ", ".join(f"{k} {v}" for k, v in sorted(lp.items()))
            + ")"
        )


ANNUAL_INPUTS = ("incidents", "permits", "complaints", "statistics", "incident_cells", "indicators")


def check_input_periods(stored: pd.DataFrame, sheets: dict, raw: Raw, res: Results, say) -> None:
    """The sheets' period_rule: "el año de sus registros anuales ...; si ningún insumo es anual, el más
    reciente de los periodos de sus insumos; cada valor lista en input_periods el periodo de cada
    insumo que usó". Checked on every stored value: (1) its period against its own input_periods
    (a failure when it does not follow the rule); (2) the periods it lists for the non-yearly layers
    against those of the files (warnings); (3) for the violence rates, the population year listed
    against the estimate the audit used (warnings)."""
    lp = layer_periods(raw)
    denom_year = {}
    stats = raw.stats()
    est = stats[stats["variable"] == "poblacion_estimada"]
    for c in raw.codes:
        denom_year[c] = sorted(int(p) for p in est.loc[est["municipality_code"] == c, "period"])
    rule_bad, listed_bad, pop_bad = defaultdict(list), defaultdict(list), defaultdict(list)
    for ind, geo, u, per, ip in zip(
        stored["indicator_id"],
        stored["geography"],
        stored["municipality_code"],
        stored["period"],
        stored["input_periods"],
        strict=True,
    ):
        if not ip:
            continue
        try:
            d = json.loads(ip)
        except ValueError:
            rule_bad[ind].append(f"{u} {per}: input_periods not JSON")
            continue
        vals = {k: v for k, v in d.items() if isinstance(v, int)}
        annual = [v for k, v in vals.items() if k in ANNUAL_INPUTS]
        if ind.startswith("cpi_"):  # the index period: each component's latest value not after it
            if vals and per < max(vals.values()):
                rule_bad[ind].append(f"{geo} {u} {per}: {ip}")
            continue
        if annual:
            if any(v != per for v in annual):
                rule_bad[ind].append(f"{geo} {u} {per}: {ip}")
        elif vals and per != max(vals.values()):
            rule_bad[ind].append(f"{geo} {u} {per}: {ip}")
        elif not vals and not ind.startswith("cpi_"):
            listed_bad[ind].append(f"{u} {per}: input_periods {ip} (the period cannot be derived from them)")
        for k, v in vals.items():
            if k in lp and k != "municipalities" and v != lp[k] and not (k == "population" and annual):
                listed_bad[ind].append(f"{u} {per}: {k} {v} (the file: {lp[k]})")
        for k in sheets.get(ind, {}).get("inputs", []):
            if k in lp and k not in ("municipalities",) and k not in vals:
                listed_bad[ind].append(f"{u} {per}: {k} not listed")
        if (
            ind
            in (
                "homicide_rate",
                "violent_incident_rate",
                "robbery_rate",
                "extortion_rate",
                "homicide_rate_police",
            )
            and "population" in vals
        ):
            codes = [c for c in raw.codes if (c if geo == GEO07 else raw.to24[c]) == u]
            want = {max([y for y in denom_year[c] if y <= per], default=2007) for c in codes}
            if vals["population"] not in want:
                pop_bad[ind].append(
                    f"{geo} {u} {per}: population {vals['population']} (estimate used: {sorted(want)})"
                )
    for ind, lst in sorted(rule_bad.items()):
        res.failures.append(
            f"{ind}: {len(lst)} values whose period does not follow the period_rule given their input_periods, e.g. {lst[0]}"
        )
    for ind, lst in sorted(listed_bad.items()):
        say(f"  input_periods warning {ind}: {len(lst)} values, e.g. {lst[0]}")
    for ind, lst in sorted(pop_bad.items()):
        say(f"  input_periods warning {ind}: {len(lst)} values list another population year, e.g. {lst[0]}")
    if not (rule_bad or listed_bad or pop_bad):
        say(
            "  input_periods: every value's period follows the period_rule; the layers' periods listed agree with the files"
        )


# ------------------------------------------------------------------------------------------ composite
def parse_components(text: str) -> list[tuple[str, float, float, float, bool]]:
    out = []
    for m_ in re.finditer(r"([a-z0-9_]+) \(peso ([\d.]+), ([\d.,-]+)–([\d.,-]+)(, menor es mejor)?\)", text):
        out.append(
            (
                m_.group(1),
                float(m_.group(2)),
                float(m_.group(3).replace(",", ".")),
                float(m_.group(4).replace(",", ".")),
                bool(m_.group(5)),
            )
        )
    return out


def composite(res: Results, sheets: dict, stored: pd.DataFrame):
    dims = {}
    for sid, s in sheets.items():
        if sid.startswith("cpi_") and sid != "cpi_overall":
            dims[sid[4:]] = parse_components(s.get("formula", "").split("sin valor")[0])
    ov = sheets.get("cpi_overall", {}).get("formula", "")
    mw = re.search(r"pesos: ([^)]*)\)", ov)
    dweights = (
        {k: float(v) for k, v in re.findall(r"([a-z_]+) ([\d.]+)", mw.group(1))}
        if mw
        else {d: 1.0 for d in dims}
    )
    derived = {sid: (sheets[sid].get("disclosure") or {}).get("policy") == "derived" for sid in sheets}
    sup = set(
        zip(
            stored.loc[stored["flag"].eq("suppressed"), "indicator_id"],
            stored.loc[stored["flag"].eq("suppressed"), "geography"],
            stored.loc[stored["flag"].eq("suppressed"), "municipality_code"],
            stored.loc[stored["flag"].eq("suppressed"), "period"].astype(int),
            strict=False,
        )
    )
    comps = {c for d in dims.values() for c, *_ in d}
    fallback = set()
    vals = {}  # (ind, geo, unit) -> sorted list[(period, value)]
    for ind in comps:
        have = {k: v for k, v in res.v.items() if k[0] == ind}
        if not have:
            fallback.add(ind)
            sub = stored[stored["indicator_id"] == ind]
            have = {
                (ind, g, u, int(p)): float(v)
                for g, u, p, v in zip(
                    sub["geography"], sub["municipality_code"], sub["period"], sub["value"], strict=False
                )
                if pd.notna(v)
            }
        for (i, g, u, p), v in have.items():
            vals.setdefault((i, g, u), []).append((p, v, (i, g, u, p) in sup))
    for k in vals:
        vals[k].sort()
    universe = sorted({p for lst in vals.values() for p, *_ in lst})
    if fallback:
        res.notes["composite"].append(
            "components taken from the store (not recomputed here): " + ", ".join(sorted(fallback))
        )
    for geo in (GEO07, GEO24):
        units = sorted({u for (i, g, u) in vals if g == geo and u != "AMSS"})
        dimval = defaultdict(dict)
        for dname, cl in dims.items():
            if not cl:
                continue
            min(
                (
                    p
                    for (i, g, u), lst in vals.items()
                    if g == geo and i in {c for c, *_ in cl}
                    for p, *_ in lst
                ),
                default=None,
            )
            for p in universe:
                for u in units:
                    tot, wsum, ok = 0.0, 0.0, True
                    for c, w, lo, hi, lower in cl:
                        lst = [x for x in vals.get((c, geo, u), []) if x[0] <= p]
                        if not lst:
                            ok = False
                            break
                        _, v, is_sup = lst[-1]
                        if is_sup and derived.get(f"cpi_{dname}", False):
                            ok = False
                            break
                        sc = min(max(100 * (v - lo) / (hi - lo), 0), 100)
                        tot += w * (100 - sc if lower else sc)
                        wsum += w
                    if ok:
                        dimval[p][(dname, u)] = tot / wsum
                        res.put(f"cpi_{dname}", geo, u, p, tot / wsum)
        for p in universe:
            for u in units:
                ds = [dimval[p].get((d, u)) for d in dweights]
                if all(x is not None for x in ds):
                    res.put(
                        "cpi_overall",
                        geo,
                        u,
                        p,
                        sum(dweights[d] * x for d, x in zip(dweights, ds, strict=False))
                        / sum(dweights.values()),
                    )


# ------------------------------------------------------------------------------------------- compare
def read_incident_cells(data_dir: Path, store: Path | None) -> pd.DataFrame | None:
    path = store or (data_dir / "observatory.gpkg")
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return pd.read_sql_query(
            "SELECT h3_cell, municipality_code, year, incidents FROM incident_cells", con
        )
    except Exception:
        return None
    finally:
        con.close()


def read_store(data_dir: Path, store: Path | None) -> pd.DataFrame:
    path = store or (data_dir / "observatory.gpkg")
    if not path.exists():
        raise SystemExit(f"no GeoPackage store at {path} (PostGIS stores are not read by this script)")
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    cols = [r[1] for r in con.execute("PRAGMA table_info(indicators)")]
    want = [
        c
        for c in (
            "indicator_id",
            "geography",
            "municipality_code",
            "period",
            "value",
            "n",
            "flag",
            "input_periods",
        )
        if c in cols
    ]
    df = pd.read_sql_query(f"SELECT {', '.join(want)} FROM indicators", con)  # noqa: S608 (known column names)
    con.close()
    df["period"] = df["period"].astype(int)
    return df


def compare(res: Results, stored: pd.DataFrame, covered: set[str]):
    rows, details = [], []
    rec = pd.DataFrame(
        [(*k, v) for k, v in res.v.items()],
        columns=["indicator_id", "geography", "municipality_code", "period", "recomputed"],
    )
    st = stored[stored["indicator_id"].isin(covered)].rename(columns={"value": "stored"})
    j = rec.merge(
        st, on=["indicator_id", "geography", "municipality_code", "period"], how="outer", indicator=True
    )
    for (ind, geo), g in j.groupby(["indicator_id", "geography"]):
        bothv = g[(g["_merge"] == "both") & g["stored"].notna() & g["recomputed"].notna()]
        d = (bothv["stored"] - bothv["recomputed"]).abs()
        rel = d / np.maximum(bothv["stored"].abs(), bothv["recomputed"].abs()).replace(0, np.nan)
        bad = bothv[(d > TOL) & (rel.fillna(0) > TOL)]
        only_rec = g[(g["_merge"] == "left_only") | ((g["_merge"] == "both") & g["stored"].isna())]
        only_st = g[(g["_merge"] == "right_only") | ((g["_merge"] == "both") & g["recomputed"].isna())]
        rows.append(
            dict(
                indicator=ind,
                geography=geo,
                compared=len(bothv),
                max_abs=float(d.max()) if len(d) else 0.0,
                max_rel=float(rel.max()) if len(rel.dropna()) else 0.0,
                mismatches=len(bad),
                missing_in_store=len(only_rec),
                extra_in_store=len(only_st),
            )
        )
        for _, r in bad.iterrows():
            details.append(
                ("mismatch", ind, geo, r["municipality_code"], r["period"], r["stored"], r["recomputed"])
            )
        for _, r in only_rec.iterrows():
            details.append(
                ("missing in store", ind, geo, r["municipality_code"], r["period"], None, r["recomputed"])
            )
        for _, r in only_st.iterrows():
            details.append(
                ("extra in store", ind, geo, r["municipality_code"], r["period"], r["stored"], None)
            )
    return rows, details


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", type=Path, default=Path(os.environ.get("OBSERVATORY_DATA_DIR", "var")))
    ap.add_argument("--store", type=Path, help="GeoPackage store (default DATA_DIR/observatory.gpkg)")
    ap.add_argument("--sample-dir", type=Path, default=REPO / "data" / "sample")
    ap.add_argument("--api", help="base URL of a running observatory API to read the sheets from")
    ap.add_argument("--sheets", help="JSON file of the sheets ({'indicators': [...]}) instead of the API")
    ap.add_argument("--save-sheets", type=Path, help="write the sheets read to this JSON file")
    ap.add_argument("--observatory", help="the observatory executable used to serve the sheets")
    ap.add_argument(
        "--skip-network",
        action="store_true",
        help="skip the network accessibility indicators (the slow part)",
    )
    ap.add_argument(
        "--details", type=int, default=200, help="how many differing values to list (default 200)"
    )
    ap.add_argument("--csv", type=Path, help="write every differing value to this CSV")
    args = ap.parse_args(argv)
    args.data_dir = args.data_dir.resolve()
    try:
        from rich.console import Console
        from rich.progress import Progress
        from rich.table import Table

        console = Console(width=200)
    except Exception:  # pragma: no cover
        Console = None
        console = None

    def say(*a):
        if console:
            console.print(*a, markup=False, highlight=False, soft_wrap=True)
        else:
            print(*a)

    stored = read_store(args.data_dir, args.store)
    sheets = get_sheets(args)
    if args.save_sheets:
        args.save_sheets.write_text(
            json.dumps({"indicators": list(sheets.values())}, ensure_ascii=False, indent=1)
        )
    st = settings_values()
    say(
        f"store: {args.store or args.data_dir / 'observatory.gpkg'} ({len(stored)} values); sheets: {len(sheets)}; "
        f"sample: {args.sample_dir}; settings: {st}"
    )
    raw = Raw(args.sample_dir.resolve())
    res = Results()
    alt = Results()  # other readings, only to say why a value differs (never to pass a check)
    state = {}

    def der(b):
        state["cells"] = density_env_risk(res, raw, sheets, b)

    alt2 = Results()  # smoothed rate from the published rates times the 2007 census
    alt3 = Results()  # non-yearly indicators dated as before the period rule

    def alt_readings(b):
        violence(alt, raw, sheets, lambda: None, census_only=True)
        smoothed(alt, raw, sheets, stored, census_only=True)
        smoothed(alt2, raw, sheets, stored, rates_from=res, victims_pop="census")
        mixed = Results()
        mixed.v = {k: v for k, v in res.v.items() if not k[0].startswith("cpi_")}
        mixed.v.update(alt.v)
        composite(mixed, sheets, stored)
        alt.v.update({k: v for k, v in mixed.v.items() if k[0].startswith("cpi_")})
        b()

    def composite_step(b):
        alt3.v = {k: v for k, v in res.v.items() if k[0] in STATIC}
        redate(res, raw, sheets)
        composite(res, sheets, stored)
        b()

    steps = [
        ("violence", lambda b: violence(res, raw, sheets, b), 5),
        ("smoothed EB", lambda b: (smoothed(res, raw, sheets, stored), b()), 1),
        ("urban control", lambda b: urban_control(res, raw, sheets, st, b, alt), 4),
        ("statistics", lambda b: statistical(res, raw, b), 2),
        ("density, environment, risk", der, 3),
        (
            "services, transit, streets",
            lambda b: services_mobility(res, raw, *state["cells"], b, alt, sheets),
            3,
        ),
        (
            "network accessibility",
            lambda b: None if args.skip_network else accessibility(res, raw, *state["cells"], b),
            3,
        ),
        (
            "hot spots",
            lambda b: hotspots(
                res, raw, read_incident_cells(args.data_dir, args.store), state["cells"][0], b, sheets
            ),
            1,
        ),
        ("composite", composite_step, 1),
        ("other readings (diagnosis)", alt_readings, 1),
    ]
    total = sum(s[2] for s in steps)
    if console:
        with Progress(console=console, transient=True) as prog:
            task = prog.add_task("recomputing", total=total)
            for name, fn, _ in steps:
                prog.update(task, description=name)
                fn(lambda: prog.advance(task))
    else:
        for name, fn, _ in steps:
            print("…", name)
            fn(lambda: None)

    all_ids = set(sheets) | set(stored["indicator_id"])
    # every indicator this script recomputes counts as covered even where it finds no value (a stored
    # value it does not reproduce is then "extra"); only what it was told to skip is not
    skipped = set(NETWORK) if args.skip_network else set()
    covered = (all_ids - skipped - set(NOT_COVERED)) & (HANDLED | set(res.indicators()))
    not_cov = sorted(all_ids - covered)
    rows, details = compare(res, stored, covered)
    if console:
        t = Table(title="Stored (project) vs recomputed (audit)", show_lines=False)
        for c in (
            "indicator",
            "geography",
            "compared",
            "max abs diff",
            "max rel diff",
            "mismatches",
            "missing in store",
            "extra in store",
        ):
            t.add_column(c, justify="right" if c not in ("indicator", "geography") else "left")
        for r in rows:
            bad = r["mismatches"] or r["missing_in_store"] or r["extra_in_store"]
            t.add_row(
                r["indicator"],
                r["geography"],
                str(r["compared"]),
                f"{r['max_abs']:.3g}",
                f"{r['max_rel']:.3g}",
                str(r["mismatches"]),
                str(r["missing_in_store"]),
                str(r["extra_in_store"]),
                style="red" if bad else None,
            )
        console.print(t)
    else:
        print(pd.DataFrame(rows).to_string(index=False))
    # n (the records behind a value) where the sheets define it: violence counts
    if res.n and "n" in stored.columns:
        sn = {
            (i, g, u, int(p)): n
            for i, g, u, p, n in zip(
                stored["indicator_id"],
                stored["geography"],
                stored["municipality_code"],
                stored["period"],
                stored["n"],
                strict=True,
            )
            if pd.notna(n)
        }
        bad_n = defaultdict(list)
        for k, n in res.n.items():
            if k in sn and int(sn[k]) != round(n):
                bad_n[k[0]].append(f"{k[1]} {k[2]} {k[3]}: stored n {int(sn[k])}, records {round(n)}")
        for ind in sorted({k[0] for k in res.n}):
            lst = bad_n.get(ind, [])
            say(
                f"  n check {ind}: "
                + (
                    f"{len(lst)} differ, e.g. {lst[0]}"
                    if lst
                    else "every stored n equals the records counted here"
                )
            )
            if lst:
                res.failures.append(f"{ind}: {len(lst)} stored n differ from the records")
    # why: does another reading reproduce the store?
    census = "2007 census as denominator for every year (the sheets before issue 20)"
    alts = [
        (
            alt,
            {
                **dict.fromkeys(
                    [
                        "homicide_rate",
                        "violent_incident_rate",
                        "robbery_rate",
                        "extortion_rate",
                        "homicide_rate_police",
                        "homicide_rate_smoothed",
                    ],
                    census,
                ),
                "housing_permit_density": "zeros in every year with an approved file of either procedure (previous rule)",
                "permits_in_hazard_zones": "the other year (submission vs resolution)",
                "floor_area_in_hazard_zones": "the other year (submission vs resolution)",
                "transit_route_length_per_10k": "each geometry as drawn, no union",
            },
        ),
        (
            alt2,
            {
                "homicide_rate_smoothed": "victims = published rate (on the year's estimate) x the 2007 census, EB weights the census"
            },
        ),
        (
            alt3,
            dict.fromkeys(
                STATIC, "dated as before the period rule (census, population layer, raster, extract, plan)"
            ),
        ),
    ]
    amaps = []
    for a_res, labels in alts:
        arows, _ = compare(a_res, stored, {k[0] for k in a_res.v})
        amaps.append(({(r["indicator"], r["geography"]): r for r in arows}, labels))
    say("\nDiagnosis of the differing indicators (other readings tried):")
    for r in rows:
        if not (r["mismatches"] or r["missing_in_store"] or r["extra_in_store"]):
            continue
        tried = False
        for amap, labels in amaps:
            a = amap.get((r["indicator"], r["geography"]))
            why = labels.get(r["indicator"])
            if why is None and r["indicator"].startswith("cpi_") and labels is amaps[0][1]:
                why = "composite recomputed with the other readings of its components"
            if a is None or why is None:
                continue
            tried = True
            ok = not (a["mismatches"] or a["missing_in_store"] or a["extra_in_store"])
            say(
                f"  {r['indicator']} ({r['geography']}): under '{why}': "
                + (
                    "reproduces every stored value"
                    if ok
                    else f"{a['mismatches']} mismatches, {a['missing_in_store']} missing, {a['extra_in_store']} extra"
                )
            )
        if not tried:
            say(f"  {r['indicator']} ({r['geography']}): no other reading tried")
    near = res.notes.pop("_shortest_first", [])
    if near:
        d = [
            abs(v / res.v[("transit_route_length_per_10k", g, u, int(p))] - 1)
            for g, u, p, v in near
            if res.v.get(("transit_route_length_per_10k", g, u, int(p)))
        ]
        res.notes["transit_route_length_per_10k"].append(
            "the sheet does not say which direction counts where they are within the tolerance: taking the shorter first "
            f"would change the values by up to {100 * max(d):.2f} % ({sum(1 for x in d if x > TOL)} of {len(d)} values)"
        )
    say("\nNotes:")
    for k, v in res.notes.items():
        for x in v:
            say(f"  {k}: {x}")
    # sheets that state a denominator or dating rule the audit does not follow (NEW definitions)
    for sid in (
        "homicide_rate",
        "violent_incident_rate",
        "robbery_rate",
        "extortion_rate",
        "homicide_rate_police",
    ):
        f = sheets.get(sid, {}).get("formula", "")
        if "censo 2007" in f and "estim" not in f and "proyecc" not in f:
            say(
                f"  {sid}: the sheet still states 'población del censo 2007' as denominator; the audit uses the yearly estimate (issue 20)"
            )
    # dating: the sheet's own words about the period, and the stored periods against the audit's
    say(
        "\nDating (period of each value): the audit's rule; stored periods not produced by it; the sheet's words"
    )
    dating_keys = ("dating", "dating_rule", "period_rule", "vintage", "periodo")
    KNOWN_SHEET_KEYS = {
        "direction",
        "disclosure",
        "formula",
        "id",
        "inputs",
        "iso37120",
        "latest_period",
        "periods",
        "references",
        "sdg_target",
        "settings",
        "theme",
        "theme_title",
        "title",
        "unit",
    }
    rules = [str(sh.get("period_rule")) for sh in sheets.values() if sh.get("period_rule")]
    common = max(set(rules), key=rules.count) if rules else None
    if common:
        say(f"  (period_rule on {rules.count(common)} sheets: {common})")
    for ind in sorted(covered):
        sh = sheets.get(ind, {})
        m_ = re.search(
            r"(periodo:[^;]*|por año de [a-zñóí ]+|se fecha [^;]*|el año de la cobertura)",
            sh.get("formula", ""),
        )
        pr = str(sh.get("period_rule") or "")
        if m_:
            words = f"formula: …{m_.group(1)}" + (
                " (and the common period_rule)" if common and pr == common else ""
            )
        elif pr:
            words = "the common period_rule" if pr == common else f"period_rule: {pr}"
        else:
            new = [k for k in sh if k not in KNOWN_SHEET_KEYS and re.search(r"dat|period|vintage|vigen", k)]
            new += [k for k in dating_keys if k in sh and k not in new]
            words = (
                "; ".join(f"{k}: {sh[k]}" for k in new if sh.get(k)) or "(the sheet states no dating rule)"
            )
        mine = {k[3] for k in res.v if k[0] == ind}
        theirs = set(stored.loc[stored["indicator_id"] == ind, "period"].astype(int))
        extra = sorted(theirs - mine)
        rule = DATING.get(ind, "the index period (every component's latest value not after it)")
        if ind in STATIC and "más reciente" in str(sh.get("period_rule", "")):
            rule = f"latest period of its inputs ({', '.join(sorted(map(str, mine)))})"
        say(
            f"  {ind:36s} {rule:55s} {'stored periods OK' if not extra else f'stored periods not expected: {extra}'}  | {words[:90]}"
        )
    # the settings the sheets print against those used here
    for sid, sh in sheets.items():
        for k, v in (sh.get("settings") or {}).items():
            name = k.removeprefix("OBSERVATORY_").lower()
            if name in st and float(st[name]) != float(v):
                res.failures.append(f"{sid}: the sheet prints {k} = {v}, the settings give {st[name]}")
    if "input_periods" in stored.columns:
        nn = stored["input_periods"].isna().sum()
        say(f"  input_periods: present in the store; {nn} of {len(stored)} values lack it")
        check_input_periods(stored, sheets, raw, res, say)
    else:
        say("  input_periods: the store has no such column yet")
    say("\nCovered (recomputed here): " + ", ".join(sorted(covered)))
    say(
        "NOT covered: "
        + (", ".join(f"{i} ({NOT_COVERED.get(i, 'not recomputed')})" for i in not_cov) or "none")
    )
    nbad = sum(r["mismatches"] for r in rows)
    nmiss = sum(r["missing_in_store"] for r in rows)
    nextra = sum(r["extra_in_store"] for r in rows)
    ncomp = sum(r["compared"] for r in rows)
    if details:
        say(f"\nDiffering values (first {args.details} of {len(details)}):")
        for d in details[: args.details]:
            kind, ind, geo, u, p, s_, r_ = d
            say(f"  {kind:17s} {ind:36s} {geo:16s} {u:10s} {int(p)}  stored={s_!r:24s} recomputed={r_!r}")
    if args.csv:
        pd.DataFrame(
            details, columns=["kind", "indicator", "geography", "unit", "period", "stored", "recomputed"]
        ).to_csv(args.csv, index=False)
    say(
        f"\nRESULT: {ncomp} values compared over {len(covered)} indicators; {nbad} mismatches, "
        f"{nmiss} recomputed values missing in the store, {nextra} stored values not recomputed"
    )
    for f in res.failures:
        say(f"FAILED CHECK: {f}")
    return 1 if (nbad or nmiss or nextra or res.failures) else 0


if __name__ == "__main__":
    sys.exit(main())
