"""Hot spots of incidents: Getis-Ord Gi* on H3 cells, with conditional-permutation inference (seeded)
and a false-discovery-rate correction.

Analysts call :func:`hotspot_cells` for the per-cell result (a map of z-scores and hot cells); the
violence theme reduces it to the share of people living in hot cells.
"""

from __future__ import annotations

import hashlib
import warnings

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
"""The false discovery rate allowed among the cells called hot or cold."""
PERMUTATIONS = 9999
"""Conditional permutations per cell: the smallest two-sided pseudo p-value is 2 / 10,000, small
enough for Benjamini-Hochberg over the AMSS's 800-odd cells to find a handful of them."""
SEED = 20_240_101
"""The seed of the permutations, fixed so that the same counts always give the same hot spots."""
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


def getis_ord_star(
    counts: pd.Series, *, alpha: float = ALPHA, permutations: int = PERMUTATIONS, seed: int = SEED
) -> pd.DataFrame:
    """Gi* of the values of H3 cells (indexed by cell) on binary H3 ring-1 neighbourhoods, with
    conditional-permutation inference and a false-discovery-rate cut-off.

    Returns
    -------
    DataFrame
        indexed like ``counts``: ``z`` (Gi* standardised by its permutation distribution), ``p``
        (two-sided permutation pseudo p-value), ``hot`` (z > 0 and p below the
        Benjamini-Hochberg cut-off of ``esda.fdr`` at ``alpha``) and ``cold`` (z < 0, likewise).

    Notes
    -----
    Each cell's neighbours are the cells of its ring 1 (``h3.grid_disk(cell, 1)``) that are in the
    lattice; Gi* includes the cell itself (``star=True``) with binary weights (Ord & Getis 1995):
    :math:`G^*_i = \\sum_j w_{ij} x_j / \\sum_j x_j`, :math:`w_{ii} = 1`.

    Counts of incidents per cell are far from normal (a third to a half of the cells are 0, the rest
    strongly skewed), so the analytical normal p-value is not used. Inference is by conditional
    permutation (Anselin 1995; esda's ``G_Local``): the cell's own count is held and ``permutations``
    times its neighbours' counts are drawn without replacement from the other cells, with numpy's
    generator seeded by ``seed`` (the same counts always give the same result). The pseudo
    p-value is two-sided with ties counted in both tails (:func:`_two_sided`), so that
    Benjamini-Hochberg over every cell and both tails holds the false discovery rate at ``alpha``
    (Caldas de Castro & Singer 2006). With the cell's own count held, Gi* and Gi are both increasing
    in the neighbours' sum, so they give the same permutation p-values; the star form is kept as the
    established one for hot spots. ``z`` is Gi* standardised by
    the exact mean and variance of that permutation distribution (:func:`_conditional_z`):
    positive when the neighbours hold more than the permutations give them.
    """
    cells = list(counts.index)
    present = set(cells)
    neighbours = {cell: [n for n in h3.grid_disk(cell, 1) if n != cell and n in present] for cell in cells}
    weights = W(neighbours, id_order=cells, silence_warnings=True)
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        # esda 2.9 announces that its default alternative will change (its p-values are not used),
        # and divides by a zero spread for a cell whose draws are all equal (its z_sim is not used).
        warnings.filterwarnings("ignore", message="The alternative hypothesis", category=DeprecationWarning)
        gi = G_Local(
            counts.to_numpy(dtype=float), weights, transform="B", star=True,
            permutations=permutations, seed=seed, n_jobs=1, keep_simulations=True,
        )  # fmt: skip
    z = _conditional_z(counts.to_numpy(dtype=float), weights.cardinalities, neighbours, cells)
    p = _two_sided(np.asarray(gi.Gs, dtype=float), np.asarray(gi.rGs, dtype=float))
    cut_off = fdr(p, alpha)
    significant = p < cut_off
    return pd.DataFrame(
        {"z": z, "p": p, "hot": (z > 0) & significant, "cold": (z < 0) & significant}, index=counts.index
    )


def _two_sided(observed: np.ndarray, drawn: np.ndarray) -> np.ndarray:
    """Two-sided permutation pseudo p-values of ``observed`` (one per cell) against ``drawn``
    (cells × draws), ties counted in both tails: :math:`\\min(1, 2 \\min(p_\\ge, p_\\le))` with
    :math:`p_\\ge = (\\#\\{G_{sim} \\ge G\\} + 1) / (P + 1)` and :math:`p_\\le` likewise. esda's own
    folded p-value counts a tie as larger only, so a cell of zeros among zeros, whose every draw
    equals it, gets the smallest p-value there is instead of 1."""
    slack = 1e-9 * np.abs(observed)[:, None] + 1e-15  # sums of counts: a tie must stay a tie
    above = (drawn >= observed[:, None] - slack).sum(axis=1)
    below = (drawn <= observed[:, None] + slack).sum(axis=1)
    draws = drawn.shape[1]
    return np.minimum(1.0, 2 * (np.minimum(above, below) + 1) / (draws + 1))


def _conditional_z(
    x: np.ndarray, cardinalities: dict[str, int], neighbours: dict[str, list[str]], cells: list[str]
) -> np.ndarray:
    """Gi* under conditional permutation, standardised exactly: with the cell's own value held,
    its :math:`k_i` neighbours' sum :math:`L_i` is a draw of :math:`k_i` of the other :math:`n - 1`
    values without replacement (mean :math:`\\mu_i`, variance :math:`\\sigma^2_i`), so
    :math:`z_i = (L_i - k_i \\mu_i) / \\sqrt{k_i \\sigma^2_i (n - 1 - k_i) / (n - 2)}`; 0 where
    that variance is 0 (no neighbour, or every other value equal). Gi* is :math:`(x_i + L_i) / S`
    with :math:`S` fixed, so this is its z as well."""
    n = len(x)
    position = {cell: i for i, cell in enumerate(cells)}
    k = np.array([cardinalities[cell] for cell in cells], dtype=float)
    around = np.array([x[[position[c] for c in neighbours[cell]]].sum() for cell in cells])
    others = (x.sum() - x) / (n - 1)
    spread = ((x**2).sum() - x**2) / (n - 1) - others**2
    variance = k * np.clip(spread, 0, None) * (n - 1 - k) / max(n - 2, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(variance > 0, (around - k * others) / np.sqrt(variance), 0.0)


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
        ``cell``, ``period``, ``incidents``, ``z``, ``p``, ``hot``, ``cold`` (see
        :func:`getis_ord_star`) and the cell's hexagon (EPSG:4326).
    """
    lattice = sorted(set(area_cells(municipalities, resolution=resolution)) | set(counts["cell"]))
    parts = []
    for year, rows in counts.groupby("period"):
        per_cell = rows.groupby("cell")["incidents"].sum().reindex(lattice, fill_value=0)
        result = getis_ord_star(per_cell, alpha=alpha)
        parts.append(result.assign(incidents=per_cell, period=int(year)).rename_axis("cell").reset_index())
    columns = ["cell", "period", "incidents", "z", "p", "hot", "cold"]
    frame = pd.concat(parts, ignore_index=True)[columns] if parts else pd.DataFrame(columns=columns)
    return gpd.GeoDataFrame(frame, geometry=hexagons(frame["cell"]), crs=STORAGE_CRS)
