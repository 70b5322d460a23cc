"""The partner feed's frames: indicator values for a period or the latest, long or wide.

One function builds what the HTTP feed, the static export and the Python API all serve, so a
partner reading ``/feeds/v1/indicators`` and an analyst calling ``Observatory.indicators`` see
the same rows. Its shape is versioned (``FEED_VERSION``; docs/feed/CHANGELOG.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final, Literal

import geopandas as gpd
import pandas as pd
import shapely

from observatory.indicators import REGISTRY
from observatory.indicators.themes import THEMES
from observatory.settings import STORAGE_CRS
from observatory.spreadsheet import neutralise_frame

FEED_VERSION = "1.1.0"
"""Semantic version of the feed's schema: a new optional member is a minor change, a renamed or
removed one a new major version and a new path (``/feeds/v2``)."""
GEOGRAPHIES = ("municipios_2007", "municipios_2024")
LATEST: Final = "latest"
ALL: Final = "all"
LONG_COLUMNS = [
    "value_id", "indicator_id", "title_es", "title_en", "theme", "unit", "municipality_code",
    "municipality_name", "geography", "period", "value", "n", "flag", "input_periods",
]  # fmt: skip
"""The long feed's properties, in order: one row per value."""
WIDE_KEYS = ["municipality_code", "municipality_name", "geography"]
"""The wide feed's first properties; then, per indicator ``id``: ``id``, ``id__n`` and ``id__flag``."""
Period = int | Literal["latest", "all"]


@dataclass(frozen=True)
class FeedQuery:
    """Which values: a period, the latest of each indicator or all periods, on one geography; each
    tuple is "any of" (empty: all)."""

    period: Period = LATEST
    geography: str = GEOGRAPHIES[0]
    indicator_ids: tuple[str, ...] = ()
    themes: tuple[str, ...] = ()
    municipality_codes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.geography not in GEOGRAPHIES:
            raise ValueError(f"geography {self.geography!r}: one of {', '.join(GEOGRAPHIES)}")
        unknown = [key for key in self.indicator_ids if key not in REGISTRY]
        if unknown:
            raise ValueError(f"unknown indicator_id {', '.join(map(repr, unknown))}; see /indicators")
        unknown = [key for key in self.themes if key not in THEMES]
        if unknown:
            raise ValueError(f"unknown theme {', '.join(map(repr, unknown))}; see /themes")


def long_feed(values: gpd.GeoDataFrame, query: FeedQuery) -> gpd.GeoDataFrame:
    """One row per value (``LONG_COLUMNS``), sorted by indicator (registry order), municipality, period.

    ``latest`` keeps, for each indicator, its most recent period on the geography, chosen before
    the municipality filter so that every municipality's value is from the same year.
    """
    rows = values[values["geography"] == query.geography]
    if query.indicator_ids:
        rows = rows[rows["indicator_id"].isin(query.indicator_ids)]
    if query.themes:
        rows = rows[rows["theme"].isin(query.themes)]
    if query.period == LATEST:
        latest = rows.groupby("indicator_id")["period"].transform("max")
        rows = rows[rows["period"] == latest]
    elif query.period != ALL:
        rows = rows[rows["period"] == query.period]
    if query.municipality_codes:
        rows = rows[rows["municipality_code"].isin(query.municipality_codes)]
    order = {key: position for position, key in enumerate(REGISTRY)}
    rows = rows.assign(
        title_es=rows["indicator_id"].map(lambda key: REGISTRY[key].title_es),
        title_en=rows["indicator_id"].map(lambda key: REGISTRY[key].title_en),
        _order=rows["indicator_id"].map(order),
    ).sort_values(["_order", "municipality_code", "period"], kind="stable")
    return long_frame(pd.DataFrame(rows[LONG_COLUMNS]), rows.geometry)


def long_frame(table: pd.DataFrame, geometry: Any) -> gpd.GeoDataFrame:
    """``LONG_COLUMNS`` of ``table``, typed as the feed types them, with ``geometry`` (lon/lat)."""
    frame = table[LONG_COLUMNS].reset_index(drop=True)
    frame = frame.astype({"period": "int64", "value": "float64", "n": "Int64"})
    for column in ("value_id", "indicator_id", "title_es", "title_en", "theme", "unit", "municipality_code",
                   "municipality_name", "geography", "flag", "input_periods"):  # fmt: skip
        frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geometry).to_numpy(), crs=STORAGE_CRS)


def widen(long: gpd.GeoDataFrame, *, per_period: bool = False) -> gpd.GeoDataFrame:
    """The long feed as one row per municipality (``per_period``: per municipality and period,
    with a ``period`` column), with ``id``, ``id__n`` and ``id__flag`` per indicator (in the long
    feed's order; rows by code and period)."""
    keys = ["municipality_code", "period"] if per_period else ["municipality_code"]
    indicators = list(dict.fromkeys(long["indicator_id"]))
    places = long.drop_duplicates(keys).sort_values(keys)
    rows = pd.MultiIndex.from_frame(places[keys])
    data: dict[str, Any] = {key: places[key].to_numpy() for key in [*WIDE_KEYS, *keys[1:]]}
    for key in indicators:
        own = long[long["indicator_id"] == key].set_index(keys)
        own.index = pd.MultiIndex.from_frame(own.index.to_frame())
        data[key] = own["value"].reindex(rows).astype("float64").to_numpy()
        data[f"{key}__n"] = pd.array(own["n"].reindex(rows), dtype="Int64")
        flags = own["flag"].reindex(rows).astype(object)
        data[f"{key}__flag"] = flags.where(flags.notna(), None).to_numpy()
    wide = pd.DataFrame(data)
    return gpd.GeoDataFrame(wide, geometry=places.geometry.to_numpy(), crs=STORAGE_CRS)


def indicator_periods(long: pd.DataFrame) -> list[dict[str, Any]]:
    """What the feed's ``indicators`` member says of each indicator in it: its sheet's titles,
    theme, unit and direction, and the period(s) its values are from."""
    described = []
    for key, rows in long.groupby("indicator_id", sort=False):
        item = REGISTRY[str(key)]
        periods = sorted(int(period) for period in rows["period"].unique())
        described.append(
            {"id": item.id, "title": {"es": item.title_es, "en": item.title_en}, "theme": item.theme,
             "theme_title": THEMES[item.theme].title(), "unit": item.unit, "direction": item.direction,
             "periods": periods, "period_rule": item.period_rule,
             "input_periods": _vintages(rows["input_periods"])}
        )  # fmt: skip
    return described


def _vintages(periods: pd.Series) -> dict[str, list[int]]:
    """Every period each input had among the values (``input_periods`` JSON texts): mixed vintages
    (people of 2007 on streets of 2024) show at a glance."""
    seen: dict[str, set[int]] = {}
    for text in periods.dropna():
        for name, period in json.loads(text).items():
            seen.setdefault(name, set()).add(int(period))
    return {name: sorted(years) for name, years in sorted(seen.items())}


def feed_document(long: gpd.GeoDataFrame, query: FeedQuery, *, wide: bool) -> dict[str, Any]:
    """The feed as a GeoJSON FeatureCollection with its version, query and indicators described
    (links are the server's to add)."""
    frame = widen(long, per_period=query.period == ALL) if wide else long
    properties = json.loads(frame.drop(columns=frame.geometry.name).to_json(orient="records"))
    for own in properties if not wide else ():
        own["input_periods"] = json.loads(own["input_periods"]) if own["input_periods"] else None
    geometries = shapely.to_geojson(frame.geometry.to_numpy())
    features = [
        {
            "type": "Feature",
            "id": _feature_id(own, wide=wide),
            "geometry": json.loads(geometry),
            "properties": own,
        }
        for own, geometry in zip(properties, geometries, strict=True)
    ]
    return {
        "type": "FeatureCollection",
        "feed_version": FEED_VERSION,
        "format": "wide" if wide else "long",
        "geography": query.geography,
        "period": query.period,
        "indicators": indicator_periods(long),
        "numberMatched": len(features),
        "numberReturned": len(features),
        "features": features,
    }


def _feature_id(properties: dict[str, Any], *, wide: bool) -> str:
    """A long feature's value id; a wide one's municipality code (and period, in a panel)."""
    if not wide:
        return str(properties["value_id"])
    period = properties.get("period")
    code = str(properties["municipality_code"])
    return code if period is None else f"{code}:{period}"


def feed_table(long: gpd.GeoDataFrame, query: FeedQuery, *, wide: bool) -> str:
    """The feed as CSV: the features' properties, without geometry."""
    frame = widen(long, per_period=query.period == ALL) if wide else long
    table = neutralise_frame(pd.DataFrame(frame.drop(columns=frame.geometry.name)))
    return str(table.to_csv(index=False, lineterminator="\n"))


FLAGS = [None, "small_n", "suppressed"]


def feed_schema(schema_id: str) -> dict[str, Any]:
    """The JSON Schema (2020-12) of the feed's GeoJSON, both formats; every property of the wide
    format is listed, described by its indicator's title and unit."""
    nullable_number = {"type": ["number", "null"]}
    flag = {
        "enum": FLAGS,
        "description": "small_n: fewer records than the small-n threshold; suppressed: withheld",
    }
    text = {"type": "string"}
    vintages = {
        "type": ["object", "null"],
        "additionalProperties": {"type": "integer"},
        "description": "the period of each input the value used (a layer, the population, a component)",
    }
    wide_properties: dict[str, Any] = {
        "municipality_code": text, "municipality_name": {"type": ["string", "null"]},
        "geography": {"enum": list(GEOGRAPHIES)},
        "period": {"type": "integer", "description": "with period=all only: the year of the row's values"},
    }  # fmt: skip
    for key, item in REGISTRY.items():
        described = f"{item.title_en} ({item.unit})"
        wide_properties[key] = {**nullable_number, "description": described}
        wide_properties[f"{key}__n"] = {"type": ["integer", "null"], "description": f"records behind {key}"}
        wide_properties[f"{key}__flag"] = flag
    long_properties = {
        "value_id": text, "indicator_id": {"enum": list(REGISTRY)}, "title_es": text, "title_en": text,
        "theme": {"enum": list(THEMES)}, "unit": text, "municipality_code": text,
        "municipality_name": {"type": ["string", "null"]}, "geography": {"enum": list(GEOGRAPHIES)},
        "period": {"type": "integer"}, "value": nullable_number, "n": {"type": ["integer", "null"]},
        "flag": flag, "input_periods": vintages,
    }  # fmt: skip
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": schema_id,
        "title": "AMSS urban observatory: indicator feed",
        "description": "Indicator values per municipality and period (GET /feeds/v1/indicators). "
        "Changes are listed in docs/feed/CHANGELOG.md; CSV columns are the features' properties.",
        "version": FEED_VERSION,
        "type": "object",
        "required": ["type", "feed_version", "format", "geography", "period", "indicators", "features"],
        "properties": {
            "type": {"const": "FeatureCollection"},
            "feed_version": {"type": "string", "pattern": r"^1\.\d+\.\d+$"},
            "format": {"enum": ["long", "wide"]},
            "geography": {"enum": list(GEOGRAPHIES)},
            "period": {"anyOf": [{"type": "integer"}, {"enum": [LATEST, ALL]}]},
            "indicators": {"type": "array", "items": {"$ref": "#/$defs/indicator"}},
            "numberMatched": {"type": "integer", "minimum": 0},
            "numberReturned": {"type": "integer", "minimum": 0},
            "features": {"type": "array"},
            "links": {"type": "array"},
        },
        "if": {"properties": {"format": {"const": "long"}}},
        "then": {"properties": {"features": {"items": _feature("#/$defs/long_properties")}}},
        "else": {"properties": {"features": {"items": _feature("#/$defs/wide_properties")}}},
        "$defs": {
            "long_properties": _closed(long_properties),
            "wide_properties": {**_closed(wide_properties), "required": WIDE_KEYS},
            "indicator": {
                "type": "object",
                "required": ["id", "title", "theme", "unit", "periods"],
                "properties": {
                    "id": {"enum": list(REGISTRY)},
                    "title": {"type": "object", "required": ["es", "en"]},
                    "theme": {"enum": list(THEMES)},
                    "theme_title": {"type": "object", "required": ["es", "en"]},
                    "unit": text,
                    "direction": {"enum": ["higher_is_better", "lower_is_better", "neutral"]},
                    "periods": {"type": "array", "items": {"type": "integer"}, "minItems": 1},
                    "period_rule": text,
                    "input_periods": {
                        "type": "object",
                        "additionalProperties": {"type": "array", "items": {"type": "integer"}},
                        "description": "every period each input had among the values",
                    },
                },
            },
        },
    }


def _feature(properties: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["type", "id", "geometry", "properties"],
        "properties": {
            "type": {"const": "Feature"},
            "id": {"type": "string"},
            "geometry": {"type": "object", "properties": {"type": {"enum": ["Polygon", "MultiPolygon"]}}},
            "properties": {"$ref": properties},
        },
    }


def _closed(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": list(properties),
        "properties": properties,
        "additionalProperties": False,
    }
