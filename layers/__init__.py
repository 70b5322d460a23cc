"""The declarative layer catalogue: one TOML file per layer, read by the store, the API, the tiles
and the map alike, so that there is one list of layers and one list of their properties.

Raster layers (``rasters/``) are a catalogue of their own: they are files, not tables, and the
store, the API and the tiles never see them."""

from __future__ import annotations

import tomllib
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

PropertyType = Literal["string", "integer", "number", "date"]
Access = Literal["public", "aggregated", "restricted"]
"""Who may read a layer: everyone; analysts only, the public reading its aggregate instead
(``public_form``); analysts only."""
GeometryType = Literal["Point", "MultiPolygon", "MultiLineString"]
DEFAULT_MAX_LENGTH = 1_000
"""Characters a text value may have unless its constraints say otherwise: a longer one is a
mistake (a whole file in one field), and would be served in every page and tile."""


class Constraint(BaseModel):
    """Bounds a loaded value must meet, in the words of Frictionless Table Schema's constraints
    (``minimum``, ``maximum``, ``exclusiveMinimum``, ``maxLength``) plus two of our own for dates
    and pairs of columns. Values outside are rejected, row by row, with the bound they break."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    minimum: float | date | None = None
    maximum: float | date | None = None
    exclusive_minimum: float | None = None
    """Numbers: the value must be greater than this (areas: > 0)."""
    max_length: int | None = Field(default=None, gt=0)
    """Text: at most this many characters (default ``DEFAULT_MAX_LENGTH``)."""
    years_ahead: int | None = Field(default=None, ge=0)
    """Dates: at most this many years after the day of the load."""
    minimum_field: str | None = None
    """Another property of the row this value may not be below (a permit is resolved on or
    after the day it was submitted)."""


class Withholding(BaseModel):
    """Rows that public outputs (feature pages, tiles) serve without some of their values: counts
    of events too small to publish without pointing at someone. The store keeps the real values,
    and ``read_layer`` (analysts, notebooks) returns them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    when: dict[str, list[str]] = Field(min_length=1)
    """Text property -> its values; a row is withheld when every property has one of its values."""
    columns: list[str] = Field(min_length=1)
    """Properties served empty (null) in a withheld row."""
    mark: dict[str, str] = Field(default_factory=dict)
    """Property -> the value served instead in a withheld row (``flag = "suppressed"``)."""

    def applies(self, properties: dict[str, Any]) -> bool:
        return all(properties.get(column) in values for column, values in self.when.items())

    def public(self, properties: dict[str, Any]) -> dict[str, Any]:
        """The properties as public outputs serve them."""
        if not self.applies(properties):
            return properties
        return {**properties, **dict.fromkeys(self.columns), **self.mark}

    def public_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """A frame of the layer's rows as public outputs serve them (``public`` for each row)."""
        withheld = np.logical_and.reduce([frame[column].isin(values) for column, values in self.when.items()])
        served = frame.copy()
        served.loc[withheld, self.columns] = None
        for column, value in self.mark.items():
            served[column] = served[column].astype(object)
            served.loc[withheld, column] = value
        return served


class Style(BaseModel):
    color: str
    fill_color: str


class Layer(BaseModel):
    """One catalogue entry: where a layer lives and what of it may be exposed."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    title: str
    title_en: str
    geometry: GeometryType
    id: str
    id_from: list[str] = Field(default_factory=list)
    """Properties whose values, joined by ``:``, make the id when sources carry none."""
    required: list[str] = Field(default_factory=list)
    """Properties every row must have a value for."""
    partition: str | None = None
    """Property naming the source of each row, for a layer fed by several files (statistics from the
    census, surveys, police counts): a load replaces only the rows of the sources it carries."""
    derive: list[str] = Field(default_factory=list)
    """Load steps (named in ``etl.derive``) that compute properties or check rows against other layers."""
    datetime: str | None = None
    min_zoom: int = Field(ge=0, le=24)
    max_zoom: int = Field(ge=0, le=24)
    max_features_per_tile: int = Field(gt=0)
    """A line or polygon tile holds every feature it touches, or none: past this many it is refused
    (observatory.tiles.TileOverCap). A point tile aggregates past it instead."""
    tile_cap_per: list[str] = Field(default_factory=list)
    """Properties whose values the cap counts features per (the indicators: per indicator and
    period, so an unfiltered tile holds every value of every indicator); none: per tile."""
    properties: dict[str, PropertyType]
    constraints: dict[str, Constraint] = Field(default_factory=dict)
    """Per property: the values a load accepts (see Constraint)."""
    style: Style
    withheld: Withholding | None = None
    access: Access = "public"
    public_form: str | None = None
    """For an ``aggregated`` layer: the public layer that stands for it (incidents counted on cells)."""

    @property
    def public(self) -> bool:
        """Whether anonymous requests may read the layer."""
        return self.access == "public"

    @model_validator(mode="after")
    def _known_columns(self) -> Layer:
        for column in (
            self.id,
            self.datetime,
            self.partition,
            *self.id_from,
            *self.required,
            *self.tile_cap_per,
        ):
            if column is not None and column not in self.properties:
                raise ValueError(f"layer {self.name}: {column!r} is not one of its properties")
        if (self.access == "aggregated") != (self.public_form is not None):
            raise ValueError(f"layer {self.name}: an aggregated layer, and only one, names its public_form")
        rule = self.withheld
        for column in [] if rule is None else [*rule.when, *rule.columns, *rule.mark]:
            if column not in self.properties:
                raise ValueError(f"layer {self.name}: withheld names {column!r}, which is not a property")
        for column in self.properties:
            if not column.replace("_", "").isalnum() or not column[0].isalpha():
                raise ValueError(f"layer {self.name}: bad property name {column!r}")
        for column, constraint in self.constraints.items():
            kind = self.properties.get(column)
            if kind is None:
                raise ValueError(f"layer {self.name}: constraint on {column!r}, which is not a property")
            bounds = (constraint.minimum, constraint.maximum)
            if any(isinstance(b, date) for b in bounds) and kind != "date":
                raise ValueError(f"layer {self.name}: {column} is a {kind}, its bounds cannot be dates")
            if any(b is not None and not isinstance(b, date) for b in bounds) and kind == "date":
                raise ValueError(f"layer {self.name}: {column} is a date, its bounds must be dates")
            other = constraint.minimum_field
            if other is not None and self.properties.get(other) != kind:
                raise ValueError(f"layer {self.name}: {column} cannot be compared with {other!r}")
        return self

    def constraint(self, column: str) -> Constraint:
        """The column's constraints, text capped at DEFAULT_MAX_LENGTH characters by default."""
        declared = self.constraints.get(column, Constraint())
        if self.properties[column] == "string" and declared.max_length is None:
            return declared.model_copy(update={"max_length": DEFAULT_MAX_LENGTH})
        return declared

    @property
    def table(self) -> str:
        return self.name

    def parse_value(self, column: str, text: str) -> str | int | float | date:
        """Turn a query-string value into the column's type (ValueError when it does not fit)."""
        kind = self.properties[column]
        if kind == "integer":
            return int(text)
        if kind == "number":
            return float(text)
        if kind == "date":
            return date.fromisoformat(text)
        return text


class UnknownLayerError(KeyError):
    pass


CATALOGUE_DIR = Path(__file__).parent


@cache
def catalogue() -> dict[str, Layer]:
    """All layers, by name, read once from the TOML files next to this module."""
    layers = {}
    for path in sorted(CATALOGUE_DIR.glob("*.toml")):
        layer = Layer.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))
        if layer.name != path.stem:
            raise ValueError(f"{path}: layer name {layer.name!r} must match the file name")
        layers[layer.name] = layer
    return layers


def get_layer(name: str) -> Layer:
    try:
        return catalogue()[name]
    except KeyError:
        raise UnknownLayerError(name) from None


RasterDtype = Literal["uint8", "int16", "uint16", "int32", "uint32", "float32", "float64"]


class RasterLayer(BaseModel):
    """One raster catalogue entry: a grid kept as a GeoTIFF file cut to the AMSS, not as a table,
    so it has no properties, tiles or features; indicators read it through zonal statistics."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    title: str
    title_en: str
    unit: str
    description: str
    """What a pixel's value means."""
    resolution_m: float | None = Field(default=None, gt=0)
    """The pixel size the theme's analyses expect, in metres; None when the source's is kept."""
    dtype: RasterDtype = "float32"
    """The stored file's data type: sources are cast to it, refusing values it cannot hold."""
    nodata: float = -9999
    """The value that marks missing pixels in the stored file, whatever the source used."""
    year: int | None = Field(default=None, ge=1900, le=2100)
    """The year the grid depicts (a land-cover map's, a hazard study's): the period of indicators
    that read it alone."""

    @model_validator(mode="after")
    def _nodata_fits(self) -> RasterLayer:
        kind = np.dtype(self.dtype)
        if kind.kind in "iu":
            info = np.iinfo(kind)
            if not (self.nodata.is_integer() and info.min <= self.nodata <= info.max):
                raise ValueError(f"raster layer {self.name}: nodata {self.nodata} is not a {self.dtype}")
        return self


RASTER_DIR = CATALOGUE_DIR / "rasters"


@cache
def raster_catalogue() -> dict[str, RasterLayer]:
    """All raster layers, by name, read once from the TOML files in ``layers/rasters/``."""
    layers = {}
    for path in sorted(RASTER_DIR.glob("*.toml")):
        layer = RasterLayer.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))
        if layer.name != path.stem:
            raise ValueError(f"{path}: layer name {layer.name!r} must match the file name")
        if layer.name in catalogue():
            raise ValueError(f"{path}: {layer.name!r} is already a vector layer")
        layers[layer.name] = layer
    return layers


def get_raster_layer(name: str) -> RasterLayer:
    try:
        return raster_catalogue()[name]
    except KeyError:
        raise UnknownLayerError(name) from None
