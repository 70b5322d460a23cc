"""Coordinate reference systems of OGC API - Features Part 2: ``crs``, ``bbox-crs``, ``Content-Crs``.

Geometries are stored in lon/lat (CRS84); a page is reprojected on its way out with PROJ, in the
axis order the CRS's authority defines (EPSG:4326 is latitude first), as Part 2 requires.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pyproj
import shapely

from observatory.errors import InvalidParameter
from observatory.store.base import Bbox

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
SUPPORTED = {
    CRS84: "OGC:CRS84",
    "http://www.opengis.net/def/crs/EPSG/0/4326": "EPSG:4326",
    "http://www.opengis.net/def/crs/EPSG/0/3857": "EPSG:3857",
    "http://www.opengis.net/def/crs/EPSG/0/32616": "EPSG:32616",
    "http://www.opengis.net/def/crs/EPSG/0/5460": "EPSG:5460",
}
"""CRS URIs served -> their PROJ names: lon/lat, lat/lon, web mercator, UTM 16N, El Salvador Lambert."""


def parse_crs(text: str | None, name: str = "crs") -> str:
    """The CRS URI a ``crs`` or ``bbox-crs`` value names (CRS84 when absent); 400 if not served.
    Accepts the URI, its safe CURIE (``[EPSG:4326]``) or the short ``EPSG:4326``."""
    if text is None:
        return CRS84
    short = text.strip().strip("[]")
    for uri, proj_name in SUPPORTED.items():
        if text == uri or short == proj_name:
            return uri
    raise InvalidParameter(f"{name}={text!r}: not served; one of {', '.join(SUPPORTED)}")


@cache
def _from_crs84(uri: str) -> pyproj.Transformer:
    return pyproj.Transformer.from_crs("OGC:CRS84", SUPPORTED[uri])


@cache
def _to_crs84(uri: str) -> pyproj.Transformer:
    return pyproj.Transformer.from_crs(SUPPORTED[uri], "OGC:CRS84")


def reproject(geometry: shapely.Geometry, uri: str) -> shapely.Geometry:
    """A stored (lon/lat) geometry in the CRS ``uri``, in its authority's axis order."""
    if uri == CRS84:
        return geometry
    transformer = _from_crs84(uri)
    return shapely.transform(geometry, lambda xy: np.column_stack(transformer.transform(xy[:, 0], xy[:, 1])))


def bbox_in_crs84(values: list[float], uri: str) -> Bbox:
    """A ``bbox`` given in the CRS ``uri`` (its axis order), as the lon/lat box that encloses it."""
    if uri == CRS84:
        west, south, east, north = values
        return (west, south, east, north)
    first, second, third, fourth = _to_crs84(uri).transform_bounds(
        values[0], values[1], values[2], values[3], densify_pts=21
    )
    if not np.isfinite([first, second, third, fourth]).all():
        raise InvalidParameter(f"bbox {values}: outside the area where {SUPPORTED[uri]} is defined")
    return (first, second, third, fourth)


def bbox_area_in_crs84(values: list[float], uri: str) -> shapely.Geometry | None:
    """The area a ``bbox`` given in a projected CRS covers, as a lon/lat polygon (edges densified;
    a box of no width or height is the line or point it is).

    A box in UTM or a Lambert projection is no lon/lat box: the lon/lat box enclosing it
    (``bbox_in_crs84``) also holds features outside it, so a query tests this polygon as well.
    None for a geographic CRS, whose box is a lon/lat box."""
    if pyproj.CRS(SUPPORTED[uri]).is_geographic:
        return None
    west, south, east, north = values
    side = max(east - west, north - south)
    if side == 0:
        box: shapely.Geometry = shapely.Point(west, south)
    elif east == west or north == south:
        box = shapely.segmentize(shapely.LineString([(west, south), (east, north)]), side / 64)
    else:
        box = shapely.segmentize(shapely.box(west, south, east, north), side / 64)
    transformer = _to_crs84(uri)
    return shapely.transform(box, lambda xy: np.column_stack(transformer.transform(xy[:, 0], xy[:, 1])))
