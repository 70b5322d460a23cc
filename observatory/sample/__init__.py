"""Deterministic sample data for the AMSS, laid on the real municipal boundaries.

The municipalities are not generated: they are the 14 AMSS polygons of geoBoundaries (gbOpen ADM2) in
``data/reference`` (see ``boundaries``). Every other source is written, in the format it really comes
in, inside those polygons by a module of its own; this one writes them all with one seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely

from observatory.sample.boundaries import amss_boundaries
from observatory.sample.complaints import COMPLAINTS_STREAM, complaints_frame
from observatory.sample.facilities import write_facilities
from observatory.sample.hazards import write_hazards
from observatory.sample.incidents import write_incidents
from observatory.sample.land_cover import write_land_cover
from observatory.sample.permits import REPORT_COUNTS, permits_frame
from observatory.sample.population import PIXEL_DEG, write_population_raster
from observatory.sample.statistical_tables import StatisticalTables, write_statistical_tables
from observatory.sample.statistics import statistics_frame
from observatory.sample.streets import STREETS_SEED, streets_frame
from observatory.sample.transit import TRANSIT_SEED, microbus_frame, transit_sample, write_gtfs
from observatory.sample.zoning import zoning_frame
from observatory.settings import METRIC_CRS, REFERENCE_DIR

__all__ = [
    "DEFAULT_SEED", "REPORT_COUNTS", "SampleFiles", "amss_boundaries", "write_manifests", "write_sample",
]  # fmt: skip

MANIFESTS_DIR = REFERENCE_DIR.parent / "sample"
"""The sample's source manifests (``*.toml``), kept beside the committed sample files."""

DEFAULT_SEED = 20171
"""The seed of the committed sample under data/sample."""
POPULATION_STREAM = 7001
"""The population generator's own random stream (with the seed), whatever the others draw."""


@dataclass(frozen=True)
class SampleFiles:
    zoning: Path
    permits: Path
    statistics: Path
    schools: Path
    health: Path
    public_spaces: Path
    population: Path
    flood_depth_100y: Path
    landslide_susceptibility: Path
    land_cover: Path
    streets: Path
    gtfs: Path
    microbus_routes: Path
    incidents: Path
    police_homicides: Path
    complaints: Path
    statistical_tables: StatisticalTables


def write_sample(
    out_dir: Path,
    *,
    seed: int = DEFAULT_SEED,
    permits_scale: float = 1.0,
    incidents_scale: float = 1.0,
    raster_resolution_m: float = 30.0,
    street_segments: int = 11_000,
    bus_routes: int = 36,
    population_pixel_deg: float = PIXEL_DEG,
) -> SampleFiles:
    """Write every sample source file; the same seed and sizes always give the same data. The
    municipalities source is the reference geoBoundaries file itself."""
    rng = np.random.default_rng(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    municipalities = amss_boundaries()
    outline = shapely.union_all(municipalities.to_crs(METRIC_CRS).geometry.values)
    schools, health, public_spaces = write_facilities(out_dir, municipalities, seed=seed)
    flood, landslide = write_hazards(out_dir, municipalities, seed, resolution_m=raster_resolution_m)
    incidents, police_homicides = write_incidents(out_dir, municipalities, seed, scale=incidents_scale)
    files = SampleFiles(
        zoning=out_dir / "esquema_director.gpkg",
        permits=out_dir / "permisos_opamss.csv",
        statistics=out_dir / "estadisticas_municipales.csv",
        schools=schools,
        health=health,
        public_spaces=public_spaces,
        population=out_dir / "poblacion_worldpop.tif",
        flood_depth_100y=flood,
        landslide_susceptibility=landslide,
        land_cover=write_land_cover(out_dir, municipalities, seed, resolution_m=raster_resolution_m),
        streets=out_dir / "calles_osm.gpkg",
        gtfs=out_dir / "gtfs_amss.zip",
        microbus_routes=out_dir / "rutas_microbus.geojson",
        incidents=incidents,
        police_homicides=police_homicides,
        complaints=out_dir / "denuncias_opamss.csv",
        statistical_tables=write_statistical_tables(out_dir, seed=seed),
    )
    files.zoning.unlink(missing_ok=True)
    zoning_frame(outline, rng).to_file(files.zoning, layer="esquema_director", driver="GPKG")
    permits = permits_frame(municipalities, rng, scale=permits_scale)
    permits.to_csv(files.permits, index=False)
    complaints = complaints_frame(permits, municipalities, np.random.default_rng([seed, COMPLAINTS_STREAM]))
    complaints.to_csv(files.complaints, index=False)
    statistics_frame().to_csv(files.statistics, index=False)
    population_rng = np.random.default_rng([seed, POPULATION_STREAM])
    write_population_raster(files.population, municipalities, population_rng, pixel_deg=population_pixel_deg)
    streets = streets_frame(outline, np.random.default_rng([seed, STREETS_SEED]), segments=street_segments)
    files.streets.unlink(missing_ok=True)
    streets.to_file(files.streets, layer="calles", driver="GPKG", SPATIAL_INDEX="NO")
    transit = transit_sample(streets, np.random.default_rng([seed, TRANSIT_SEED]), bus_routes=bus_routes)
    write_gtfs(files.gtfs, transit)
    files.microbus_routes.write_text(microbus_frame(transit).to_json(drop_id=True), encoding="utf-8")
    write_manifests(out_dir)
    return files


def write_manifests(out_dir: Path) -> None:
    """Copy the sample's manifests to ``out_dir``, pointing them at the reference data wherever
    ``out_dir`` lies."""
    if out_dir.resolve() == MANIFESTS_DIR.resolve():
        return
    for manifest in sorted(MANIFESTS_DIR.glob("*.toml")):
        text = manifest.read_text(encoding="utf-8").replace('"../reference/', f'"{REFERENCE_DIR}/')
        (out_dir / manifest.name).write_text(text, encoding="utf-8")
