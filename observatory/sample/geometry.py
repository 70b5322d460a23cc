"""Where sample features go: random points inside polygons, denser toward San Salvador's centre."""

from __future__ import annotations

import numpy as np
import shapely
from pyproj import Transformer

from observatory.settings import METRIC_CRS, STORAGE_CRS

HISTORIC_CENTRE = (-89.1916, 13.6978)
"""Lon/lat of San Salvador's historic centre, toward which zoning and permits concentrate."""
PERMIT_DECAY_M = 4_000.0
"""Within a municipality, permit density falls by a factor e every this many metres from the centre."""


def centre_metric() -> shapely.Point:
    x, y = Transformer.from_crs(STORAGE_CRS, METRIC_CRS, always_xy=True).transform(*HISTORIC_CENTRE)
    return shapely.Point(x, y)


def random_points_in(
    area: shapely.Geometry,
    count: int,
    rng: np.random.Generator,
    *,
    toward: shapely.Point | None = None,
    decay_m: float = PERMIT_DECAY_M,
) -> np.ndarray:
    """``count`` random points inside ``area``, by vectorised rejection sampling.

    Uniform when ``toward`` is None; otherwise a candidate is kept with probability
    ``exp(-(d - d_min) / decay_m)``, d being its distance to ``toward`` and d_min the area's.
    """
    minx, miny, maxx, maxy = shapely.bounds(area)
    shapely.prepare(area)
    nearest = 0.0 if toward is None else shapely.distance(area, toward)
    found: list[np.ndarray] = []
    total = 0
    while total < count:
        xy = rng.uniform((minx, miny), (maxx, maxy), size=(max(4 * (count - total), 64), 2))
        if toward is not None:
            distance = np.hypot(xy[:, 0] - toward.x, xy[:, 1] - toward.y)
            xy = xy[rng.random(len(xy)) < np.exp(-(distance - nearest) / decay_m)]
        inside = xy[shapely.contains_xy(area, xy[:, 0], xy[:, 1])]
        found.append(inside)
        total += len(inside)
    return np.concatenate(found)[:count]
