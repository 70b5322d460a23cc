"""Source manifests: how one file becomes one layer, declared as data (TOML) beside the file.

The vocabulary follows Frictionless Table Schema where it has a word for the thing (``fields``,
``format``, ``decimalChar`` → ``decimal_char``, ``groupChar`` → ``group_char``, ``bareNumber`` →
``bare_number``, ``missingValues`` → ``missing_values``, ``primaryKey`` → the layer's id), and adds
what a geographic source needs: coordinate columns, the CRS, the encoding, a names table, joins to
other tables and a row filter. Relative paths are read from the manifest's folder.

A GeoTIFF feeds a raster layer (``layers/rasters/``): it maps no fields, and may name its band and
the value of its missing pixels. It may also feed a polygon layer, each pixel becoming a cell whose
columns (``cell``, ``row``, ``col``, ``value``: see ``etl.raster_cells``) the fields map.
"""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from layers import UnknownLayerError, catalogue, get_layer, raster_catalogue
from observatory.errors import LoadError
from observatory.settings import REFERENCE_DIR

Format = Literal[
    "geojson", "topojson", "shapefile", "geopackage", "kml", "flatgeobuf", "geoparquet", "csv", "excel",
    "geotiff", "gtfs",
]  # fmt: skip
SUFFIX_FORMATS: dict[str, Format] = {
    ".geojson": "geojson", ".json": "geojson", ".topojson": "topojson", ".shp": "shapefile",
    ".zip": "shapefile", ".gpkg": "geopackage", ".kml": "kml", ".fgb": "flatgeobuf",
    ".parquet": "geoparquet", ".geoparquet": "geoparquet", ".csv": "csv", ".txt": "csv",
    ".tsv": "csv", ".xlsx": "excel", ".xls": "excel", ".tif": "geotiff", ".tiff": "geotiff",
}  # fmt: skip
NAMES_TABLE = REFERENCE_DIR / "nombres_municipios.csv"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldSpec(_Strict):
    """How one catalogue property is filled from the source."""

    source: str | None = None
    """Source column (matched case-insensitively)."""
    value: str | int | float | None = None
    """A constant for every row, for properties the source does not carry."""
    optional: bool = False
    """The source may lack the column altogether: the property is then loaded empty."""
    extract: str | None = None
    """Regular expression; its first group is kept (``SV(\\d{4})`` turns ``SV0614`` into ``0614``)."""
    values: dict[str, str] | None = None
    """Raw value -> our value; a raw value not listed is a reject, never a guess."""
    format: str | None = None
    """Dates: ``iso`` (default), ``epoch_ms``, ``epoch_s`` or a strptime pattern such as ``%d/%m/%Y``."""
    timezone: str | None = None
    """Epoch dates are instants: the IANA zone whose calendar dates them (``America/El_Salvador``);
    UTC when not given, as ArcGIS and most exports write date-only values."""
    decimal_char: str = "."
    group_char: str = ""
    """Thousands separator to remove (``,`` in ``1,250.50``; ``.`` in ``1.250,50``)."""
    bare_number: bool = True
    """False when numbers come with currency signs, percent signs or units around them."""

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                example = "an IANA name such as America/El_Salvador"
                raise ValueError(f"unknown time zone {value!r} ({example})") from None
        return value

    @field_validator("format")
    @classmethod
    def _known_format(cls, value: str | None) -> str | None:
        if value is not None and value not in ("iso", "epoch_ms", "epoch_s") and "%" not in value:
            raise ValueError(f"date format {value!r}: use iso, epoch_ms, epoch_s or a strptime pattern")
        return value


class SkipRule(_Strict):
    """Rows that are not data (subtotals, notes): skipped when ``column`` matches ``pattern``."""

    column: str
    pattern: str


class SourceSpec(_Strict):
    path: Path
    format: Format | None = None
    layer: str | None = None
    """Layer inside a multi-layer file (GeoPackage, KML), or the table of a GTFS feed (stops, routes)."""
    encoding: str | None = None
    """Text encoding when the file does not declare it (a Shapefile without .cpg, a CSV)."""
    crs: str | None = None
    """CRS of the coordinates when the file declares none (CSV, Excel, a Shapefile without .prj)."""
    x: str | None = None
    """Column of the longitude or easting in a table (found by name when not given)."""
    y: str | None = None
    delimiter: str = ","
    sheet: str | int = 0
    """Excel sheet, by name or 0-based position."""
    header_row: int = Field(default=1, ge=1)
    """1-based row of the column names in a table; rows above it are ignored."""
    skip: list[SkipRule] = Field(default_factory=list)
    missing_values: list[str] = Field(default_factory=lambda: [""])
    nodata: float | None = None
    """GeoTIFF: the value of missing pixels, over the one the file declares (or for a file without)."""
    band: int = Field(default=1, ge=1)
    """GeoTIFF: the 1-based band to load."""


class NamesSpec(_Strict):
    """Find each row's municipality code from its name through a names table (code,name)."""

    column: str
    """Source column holding the name."""
    field: str
    """Property that receives the code."""
    table: Path = NAMES_TABLE


class JoinSpec(_Strict):
    """Properties taken from another table (CSV) by key; a row without a match is a reject."""

    path: Path
    on: str
    """Our property holding the key."""
    key: str
    """The table's key column."""
    fields: dict[str, str]
    """Our property -> the table's column."""


class FilterSpec(_Strict):
    """Keep only rows whose property is one of ``values``; the others are rejects."""

    field: str
    values: list[str]


class CoverageSpec(_Strict):
    """What the source reports completely, so that an absent record inside it is a zero and one
    outside it is missing ("no record" is "none happened" only where the source was looking)."""

    years: tuple[int, int]
    """The first and the last year it covers, both included."""
    types: list[str] | None = None
    """The values of the layer's ``type`` it records (a police feed of homicides and robberies
    only says nothing about extortions); None: every type."""

    @model_validator(mode="after")
    def _ordered(self) -> CoverageSpec:
        if self.years[0] > self.years[1]:
            raise ValueError(f"coverage.years: {self.years[0]} comes after {self.years[1]}")
        return self


class Manifest(_Strict):
    layer: str
    description: str = ""
    source: SourceSpec
    fields: dict[str, str | FieldSpec] = Field(default_factory=dict)
    names: NamesSpec | None = None
    joins: list[JoinSpec] = Field(default_factory=list)
    filter: FilterSpec | None = None
    coverage: CoverageSpec | None = None
    min_share_inside: float = Field(default=0.5, gt=0, le=1)
    """The least share of a feature's area (a line's length) that must lie inside the AMSS municipalities."""
    file: Path | None = None
    """Where the manifest was read from (None for one built on the command line)."""
    sha256: str = ""

    @field_validator("layer")
    @classmethod
    def _known_layer(cls, value: str) -> str:
        if value not in catalogue() and value not in raster_catalogue():
            known = ", ".join([*catalogue(), *raster_catalogue()])
            raise ValueError(f"unknown layer {value!r}; known: {known}")
        return value

    @model_validator(mode="after")
    def _raster_or_vector(self) -> Manifest:
        """A GeoTIFF feeds a raster layer and nothing else does; each kind takes its own settings."""
        found = self.source.format or SUFFIX_FORMATS.get(self.source.path.suffix.lower())
        if self.is_raster:
            if found not in (None, "geotiff"):
                raise ValueError(f"{self.layer} is a raster layer: its source must be a GeoTIFF, not {found}")
            if self.fields or self.names or self.joins or self.filter:
                raise ValueError(
                    f"{self.layer} is a raster layer: it takes no fields, names, joins or filter"
                )
        elif found == "geotiff":
            geometry = get_layer(self.layer).geometry
            if geometry != "MultiPolygon":
                raise ValueError(
                    f"{self.layer} is a {geometry} layer: a GeoTIFF feeds a raster layer, or a polygon "
                    "layer whose features are its pixels"
                )
        elif {"nodata", "band"} & self.source.model_fields_set:
            raise ValueError("source.nodata and source.band are for GeoTIFF sources")
        typed = not self.is_raster and "type" in get_layer(self.layer).properties
        if self.coverage and self.coverage.types is not None and not typed:
            raise ValueError(f"coverage.types: layer {self.layer} has no type")
        return self

    @property
    def is_raster(self) -> bool:
        return self.layer in raster_catalogue()

    def field_specs(self) -> dict[str, FieldSpec]:
        """Every mapped property as a FieldSpec (a plain string names the source column)."""
        if self.is_raster:
            return {}
        layer = get_layer(self.layer)
        specs = {}
        for name, spec in self.fields.items():
            if name not in layer.properties:
                raise LoadError(
                    f"{self.file}: field {name!r} is not a property of layer {layer.name} "
                    f"({', '.join(layer.properties)})"
                )
            specs[name] = FieldSpec(source=spec) if isinstance(spec, str) else spec
        return specs

    @property
    def source_format(self) -> Format:
        found = self.source.format or SUFFIX_FORMATS.get(self.source.path.suffix.lower())
        if found is None:
            raise LoadError(
                f"{self.source.path}: unknown file type {self.source.path.suffix!r}; "
                f"set source.format to one of {', '.join(sorted(set(SUFFIX_FORMATS.values())))}"
            )
        return found


def read_manifest(path: Path) -> Manifest:
    """Parse and check a manifest file; every problem is a LoadError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise LoadError(f"{path}: manifest not found")
    raw = path.read_bytes()
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise LoadError(f"{path}: not a valid TOML manifest ({error})") from None
    folder = path.resolve().parent
    _resolve_paths(data, folder)
    try:
        manifest = Manifest.model_validate({**data, "file": path, "sha256": hashlib.sha256(raw).hexdigest()})
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise LoadError(f"{path}: {problems}") from None
    manifest.field_specs()
    return manifest


def default_manifest(layer_name: str, source: Path, *, crs: str | None = None) -> Manifest:
    """A manifest for a file whose columns already carry the catalogue's names (or for a raster)."""
    if layer_name in raster_catalogue():
        return Manifest(layer=layer_name, source=SourceSpec(path=Path(source), crs=crs))
    try:
        layer = get_layer(layer_name)
    except UnknownLayerError:
        known = ", ".join([*catalogue(), *raster_catalogue()])
        raise LoadError(f"unknown layer {layer_name!r}; known: {known}") from None
    fields: dict[str, str | FieldSpec] = {
        name: FieldSpec(source=name, optional=name not in layer.required and name != layer.id)
        for name in layer.properties
    }
    return Manifest(layer=layer_name, source=SourceSpec(path=Path(source), crs=crs), fields=fields)


def _resolve_paths(data: dict[str, object], folder: Path) -> None:
    def resolve(value: object) -> object:
        return str(folder / str(value)) if not Path(str(value)).is_absolute() else value

    source = data.get("source")
    if isinstance(source, dict) and "path" in source:
        source["path"] = resolve(source["path"])
    names = data.get("names")
    if isinstance(names, dict) and "table" in names:
        names["table"] = resolve(names["table"])
    joins = data.get("joins")
    for join in joins if isinstance(joins, list) else []:
        if isinstance(join, dict) and "path" in join:
            join["path"] = resolve(join["path"])
