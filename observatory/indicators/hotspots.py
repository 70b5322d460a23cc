"""Hot spots of incidents: Getis-Ord Gi* on H3 cells, with a false-discovery-rate correction.

Analysts call :func:`hotspot_cells` for the per-cell result (a map of z-scores and hot cells); the
violence theme reduces it to the share of people living in hot cells.
"""

from __future__ import annotations

import hashlib

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import shapely
from esda import fdr
from esda.getisord import G_Local
from libpysal.weights import W

from observatory.h3grid import hexagons
from observatory.indicators.memo import BoundedMemo
from observatory.settings import STORAGE_CRS

RESOLUTION = 8
"""H3 resolution of the cells: about 0.74 km² each, a few blocks of the AMSS."""
ALPHA = 0.05
"""The false discovery rate allowed among the cells called hot."""
CACHED_POINT_CELLS = 4
"""Sets of points whose cells are kept in memory: a compute run needs two (incidents, population)."""
_point_cells: BoundedMemo[np.ndarray] = BoundedMemo(CACHED_POINT_CELLS)


def area_cells(municipalities: gpd.GeoDataFrame, *, resolution: int = RESOLUTION) -> list[str]:
    """The H3 cells whose centre lies inside the union of the municipalities."""
    outline = shapely.union_all(municipalities.to_crs(STORAGE_CRS).geometry.values)
    return sorted(h3.geo_to_cells(outline, resolution))


def point_cells(points: gpd.GeoSeries, *, resolution: int = RESOLUTION) -> np.ndarray:
    """The H3 cell of each point.

    Located once per set of points and resolution (h3 has no vectorised lookup: a Python call per
    point, about 3 s per million): the hot spots are the whole area's whatever the geography, so a
    compute run asks twice for the same incidents and the same population cells, the 2024
    geography's being copies of the frames with other codes. The key is the coordinates' bytes.
    """
    lonlat = points.to_crs(STORAGE_CRS).to_numpy()
    lon, lat = shapely.get_x(lonlat), shapely.get_y(lonlat)
    key = (hashlib.blake2b(lon.tobytes() + lat.tobytes()).digest(), resolution)

    def locate() -> np.ndarray:
        pairs = zip(lon.tolist(), lat.tolist(), strict=True)
        return np.array([h3.latlng_to_cell(y, x, resolution) for x, y in pairs], dtype=object)

    return _point_cells.get(key, locate).copy()


def population_cells(points: gpd.GeoDataFrame, *, resolution: int = RESOLUTION) -> pd.DataFrame:
    """Population points (``observatory.indicators.people.population_points``) with their H3 cell."""
    return pd.DataFrame(
        {
            "cell": point_cells(points.geometry, resolution=resolution),
            "population": points["population"].to_numpy(),
            "municipality_code": points["municipality_code"].to_numpy(),
        }
    )


def getis_ord_star(counts: pd.Series, *, alpha: float = ALPHA) -> pd.DataFrame:
    """Gi* of the values of H3 cells (indexed by cell) on binary queen-like H3 neighbourhoods.

    Returns
    -------
    DataFrame
        indexed like ``counts``: ``z`` (Gi* z-score), ``p`` (one-sided normal p-value of ``|z|``),
        ``hot`` (z > 0 and p below the Benjamini-Hochberg cut-off of ``esda.fdr`` at ``alpha``).

    Notes
    -----
    Each cell's neighbours are the cells of its ring 1 (``h3.grid_disk(cell, 1)``) that are in the
    lattice; Gi* includes the cell itself (``star=True``) with binary weights. p-values are the
    analytical ones (``p_norm``), so a result does not depend on a random seed.
    """
    cells = list(counts.index)
    present = set(cells)
    neighbours = {cell: [n for n in h3.grid_disk(cell, 1) if n != cell and n in present] for cell in cells}
    weights = W(neighbours, id_order=cells, silence_warnings=True)
    gi = G_Local(counts.to_numpy(dtype=float), weights, transform="B", star=True, permutations=0)
    z = np.asarray(gi.Zs, dtype=float)
    p = np.asarray(gi.p_norm, dtype=float)
    cut_off = fdr(p, alpha)
    return pd.DataFrame({"z": z, "p": p, "hot": (z > 0) & (p < cut_off)}, index=counts.index)


def point_counts(incidents: gpd.GeoDataFrame, *, resolution: int = RESOLUTION) -> pd.DataFrame:
    """Incidents per H3 cell and year (``cell``, ``period``, ``incidents``), from their points: the
    input of :func:`hotspot_cells` for analysts holding the exact points."""
    located = pd.DataFrame(
        {
            "cell": point_cells(incidents.geometry, resolution=resolution),
            "period": pd.to_datetime(incidents["date"]).dt.year.to_numpy(),
        }
    )
    return located.groupby(["cell", "period"]).size().rename("incidents").reset_index()


def hotspot_cells(
    counts: pd.DataFrame,
    municipalities: gpd.GeoDataFrame,
    *,
    resolution: int = RESOLUTION,
    alpha: float = ALPHA,
) -> gpd.GeoDataFrame:
    """Per year, every H3 cell of the area with its incidents, Gi* z-score, p-value and hot flag.

    ``counts`` gives incidents per cell and year (``cell``, ``period``, ``incidents``): from the
    points (:func:`point_counts`), or the published cells. The lattice is the cells whose centre
    lies in the municipalities plus any cell counted, so that cells without incidents count as
    zeros, as Gi* needs.

    Returns
    -------
    GeoDataFrame
        ``cell``, ``period``, ``incidents``, ``z``, ``p``, ``hot`` and the cell's hexagon (EPSG:4326).
    """
    lattice = sorted(set(area_cells(municipalities, resolution=resolution)) | set(counts["cell"]))
    parts = []
    for year, rows in counts.groupby("period"):
        per_cell = rows.groupby("cell")["incidents"].sum().reindex(lattice, fill_value=0)
        result = getis_ord_star(per_cell, alpha=alpha)
        parts.append(result.assign(incidents=per_cell, period=int(year)).rename_axis("cell").reset_index())
    columns = ["cell", "period", "incidents", "z", "p", "hot"]
    frame = pd.concat(parts, ignore_index=True)[columns] if parts else pd.DataFrame(columns=columns)
    return gpd.GeoDataFrame(frame, geometry=hexagons(frame["cell"]), crs=STORAGE_CRS)
