"""H3 cells as the polygons they are: the one place their boundaries become shapely hexagons."""

from __future__ import annotations

from collections.abc import Iterable

import h3
import shapely


def hexagons(cells: Iterable[str]) -> list[shapely.Polygon]:
    """Each cell's hexagon in lon/lat (h3 gives its vertices lat first)."""
    return [shapely.Polygon([(lon, lat) for lat, lon in h3.cell_to_boundary(cell)]) for cell in cells]
