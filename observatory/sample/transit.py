"""Public transport as it comes: bus routes in a GTFS feed (stops.txt, shapes.txt with one shape per
direction, trips.txt, routes.txt, agency.txt), and microbus routes traced by hand in a GeoJSON, some
stored as a GeometryCollection of their two directions. Routes follow the streets (shortest paths
between termini in the urban area, so the rural north gets few or no stops); stops every
STOP_SPACING_M metres along the bus routes, shared where routes run together."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import shapely

from observatory.indicators.network import StreetNetwork
from observatory.sample.geometry import centre_metric
from observatory.sample.streets import largest_component
from observatory.settings import METRIC_CRS, STORAGE_CRS

TRANSIT_SEED = 73_907
"""Mixed with the sample's seed: the transit generator's own random stream."""
TERMINUS_RADIUS_M = 12_000.0
"""Routes start and end within this distance of San Salvador's centre."""
MIN_ROUTE_M = 5_000.0
"""Termini at least this far apart (straight line)."""
STOP_SPACING_M = 400.0
STOP_MERGE_M = 60.0
"""Stops of several routes within this grid cell are one stop."""
BUS_AGENCY = "Transporte Colectivo AMSS"
MICROBUS_AGENCY = "Microbuses AMSS (trazado OPAMSS)"
RETURN_OFFSET_M = 8.0
"""A hand-traced return direction runs this far beside the outward one (the other lane)."""


@dataclass(frozen=True)
class TransitSample:
    bus_routes: list[shapely.LineString]
    """Outward direction of each bus route, in METRIC_CRS."""
    microbus_routes: list[shapely.LineString]
    stops: np.ndarray
    """Stop coordinates, METRIC_CRS."""


def transit_sample(
    streets: gpd.GeoDataFrame, rng: np.random.Generator, *, bus_routes: int = 36, microbus_routes: int = 12
) -> TransitSample:
    """Routes along ``streets`` and stops along the bus routes."""
    network = StreetNetwork.from_streets(streets)
    largest = largest_component(network.graph)
    centre = centre_metric()
    urban = largest[np.hypot(*(network.xy[largest] - (centre.x, centre.y)).T) < TERMINUS_RADIUS_M]
    routes = [_route(network, urban, rng) for _ in range(bus_routes + microbus_routes)]
    bus = routes[:bus_routes]
    along = [
        shapely.get_coordinates(
            shapely.line_interpolate_point(route, np.arange(0, route.length, STOP_SPACING_M))
        )
        for route in bus
    ]
    stops = np.unique(np.round(np.concatenate(along) / STOP_MERGE_M), axis=0) * STOP_MERGE_M
    return TransitSample(bus, routes[bus_routes:], stops)


def _route(network: StreetNetwork, urban: np.ndarray, rng: np.random.Generator) -> shapely.LineString:
    while True:
        a, b = rng.choice(urban, size=2, replace=False)
        if np.hypot(*(network.xy[a] - network.xy[b])) >= MIN_ROUTE_M:
            path = nx.shortest_path(network.graph, int(a), int(b), weight="length")
            return shapely.LineString(network.xy[path])


def write_gtfs(path: Path, sample: TransitSample) -> None:
    """The bus routes and stops as a GTFS zip (coordinates in WGS 84)."""
    to_lonlat = gpd.GeoSeries(shapely.points(sample.stops), crs=METRIC_CRS).to_crs(STORAGE_CRS)
    stops = pd.DataFrame(
        {
            "stop_id": [f"S{i:05d}" for i in range(1, len(sample.stops) + 1)],
            "stop_name": [f"Parada {i}" for i in range(1, len(sample.stops) + 1)],
            "stop_lat": to_lonlat.y.round(6),
            "stop_lon": to_lonlat.x.round(6),
        }
    )
    route_ids = [f"R{i:03d}" for i in range(1, len(sample.bus_routes) + 1)]
    routes = pd.DataFrame(
        {
            "route_id": route_ids,
            "agency_id": "TCA",
            "route_short_name": [str(100 + i) for i in range(len(route_ids))],
            "route_type": 3,
        }
    )
    shapes, trips = [], []
    for route_id, line in zip(route_ids, sample.bus_routes, strict=True):
        for direction, drawn in enumerate((line, line.reverse())):
            shape_id = f"{route_id}_{direction}"
            trips.append({"route_id": route_id, "service_id": "LV", "trip_id": f"T{shape_id}",
                          "direction_id": direction, "shape_id": shape_id})  # fmt: skip
            lonlat = gpd.GeoSeries([drawn], crs=METRIC_CRS).to_crs(STORAGE_CRS).get_coordinates()
            shapes.append(
                pd.DataFrame(
                    {
                        "shape_id": shape_id,
                        "shape_pt_lat": lonlat["y"].round(6).to_numpy(),
                        "shape_pt_lon": lonlat["x"].round(6).to_numpy(),
                        "shape_pt_sequence": np.arange(1, len(lonlat) + 1),
                    }
                )
            )
    agency = pd.DataFrame(
        [{"agency_id": "TCA", "agency_name": BUS_AGENCY, "agency_url": "https://opamss.org.sv",
          "agency_timezone": "America/El_Salvador"}]
    )  # fmt: skip
    tables = {"agency.txt": agency, "routes.txt": routes, "trips.txt": pd.DataFrame(trips),
              "shapes.txt": pd.concat(shapes, ignore_index=True), "stops.txt": stops}  # fmt: skip
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, table in tables.items():
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))  # same bytes for the same data
            archive.writestr(info, table.to_csv(index=False), compress_type=zipfile.ZIP_DEFLATED)


def microbus_frame(sample: TransitSample) -> gpd.GeoDataFrame:
    """Microbus routes as traced by hand (EPSG:4326): every other one a GeometryCollection of its
    outward line and its return beside it, the rest a LineString."""
    geometries = [
        shapely.GeometryCollection([line, line.offset_curve(RETURN_OFFSET_M).reverse()])
        if i % 2 == 0
        else line
        for i, line in enumerate(sample.microbus_routes)
    ]
    count = len(geometries)
    return gpd.GeoDataFrame(
        {
            "ID_RUTA": [f"MB{i:02d}" for i in range(1, count + 1)],
            "NOMBRE": [f"Ruta {i}-MB" for i in range(1, count + 1)],
            "TIPO": "microbus",
            "OPERADOR": MICROBUS_AGENCY,
        },
        geometry=geometries,
        crs=METRIC_CRS,
    ).to_crs(STORAGE_CRS)
