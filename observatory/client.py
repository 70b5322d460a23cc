"""The Python API for analysts: one object, the same methods, over a local store or a remote
observatory.

>>> obs = Observatory.open()                            # the store the settings select
>>> obs = Observatory.open("var")                       # a GeoPackage store's folder
>>> obs = Observatory.open("https://observatorio.example")   # a server's API (its partner feed)
>>> obs.indicators(theme="density", period="latest", wide=True)

Indicator values come from the feed (observatory.feed) on both sides, so a local and a remote
observatory give equal frames. One difference is deliberate: a remote server withholds the values
its ``[withheld]`` rule names (null, flag ``suppressed``), a local store keeps them for analysts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

import geopandas as gpd
import httpx
import pandas as pd
import shapely

from layers import Layer, UnknownLayerError, get_layer
from observatory.api.cql2 import parse_filter
from observatory.errors import (
    Forbidden,
    InvalidParameter,
    NotFound,
    ObservatoryError,
    StoreUnavailable,
    Unauthorized,
)
from observatory.feed import ALL, LATEST, LONG_COLUMNS, FeedQuery, Period, long_feed, long_frame, widen
from observatory.indicators import REGISTRY
from observatory.indicators.themes import THEMES
from observatory.settings import STORAGE_CRS, Settings, get_settings
from observatory.store import Store, conform, open_store
from observatory.store.base import Bbox, FeatureQuery, empty_frame

NO_DATA = "no data loaded: run `observatory demo` or `observatory load` first"
PAGE = 10_000
"""Features per request when a remote layer is read page by page (the API's largest limit)."""


class NoData(ObservatoryError):
    """The store (or the server's) has nothing loaded yet."""

    status = 409
    title = "No data"


class Source(Protocol):
    """Where an Observatory reads from: a local store or a server."""

    def sheets(self) -> list[dict[str, Any]]: ...
    def values(self, query: FeedQuery) -> gpd.GeoDataFrame: ...
    def layer(self, layer: Layer, *, bbox: Bbox | None, cql2: str | None) -> gpd.GeoDataFrame: ...
    def close(self) -> None: ...


class Observatory:
    """Indicators, their technical sheets and the layers of one observatory, as (Geo)DataFrames."""

    def __init__(self, source: Source) -> None:
        self.source = source

    @classmethod
    def open(cls, where: str | Path | Settings | None = None, *, token: str | None = None) -> Observatory:
        """A local store (None: the settings' store; a folder holding ``observatory.gpkg``; a
        ``postgresql://`` URL; Settings) or a remote observatory (an ``http(s)://`` URL), read as
        the holder of ``token`` (an analyst's API key or OpenID Connect access token) if given:
        restricted layers, such as the exact incidents, then come too."""
        if isinstance(where, str) and where.startswith(("http://", "https://")):
            return cls(RemoteSource(where, token=token))
        if isinstance(where, str) and where.startswith(("postgresql://", "postgres://")):
            return cls(LocalSource(get_settings().model_copy(update={"database_url": where})))
        if where is None or isinstance(where, Settings):
            return cls(LocalSource(where or get_settings()))
        settings = Settings(data_dir=Path(where), database_url=None)
        if not settings.geopackage_path.exists():
            raise NoData(f"{settings.geopackage_path} does not exist; {NO_DATA}")
        return cls(LocalSource(settings))

    def __enter__(self) -> Observatory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.source.close()

    def themes(self) -> pd.DataFrame:
        """The themes in the report's order, with their titles and indicator ids."""
        sheets = self.sheets()
        rows = [
            {"id": theme.id, "title_es": theme.title_es, "title_en": theme.title_en,
             "indicators": list(sheets.index[sheets["theme"] == theme.id])}
            for theme in THEMES.values()
        ]  # fmt: skip
        return pd.DataFrame(rows).set_index("id")

    def sheets(self) -> pd.DataFrame:
        """Every indicator's technical sheet, one row per indicator (``title_es``, ``title_en``)."""
        rows = [
            {**sheet, "title_es": sheet["title"]["es"], "title_en": sheet["title"]["en"]}
            for sheet in self.source.sheets()
        ]
        return pd.DataFrame(rows).drop(columns=["title", "theme_title"]).set_index("id")

    def sheet(self, indicator: str) -> dict[str, Any]:
        """One indicator's technical sheet."""
        for sheet in self.source.sheets():
            if sheet["id"] == indicator:
                return sheet
        raise NotFound(f"no indicator {indicator!r}; see Observatory.sheets()")

    def indicators(
        self,
        *,
        theme: str | Iterable[str] | None = None,
        indicator: str | Iterable[str] | None = None,
        period: Period = LATEST,
        geography: str = "municipios_2007",
        municipality: str | Iterable[str] | None = None,
        wide: bool = False,
    ) -> gpd.GeoDataFrame:
        """Indicator values: tidy (one row per value: indicator, titles, unit, municipality,
        period, value, n, flag) or wide (one row per municipality, a column per indicator).

        ``period``: a year, ``"latest"`` (each indicator's own latest year) or ``"all"`` (wide: a
        row per municipality and period).
        """
        try:
            query = FeedQuery(
                period=period, geography=geography, indicator_ids=_many(indicator), themes=_many(theme),
                municipality_codes=_many(municipality),
            )  # fmt: skip
        except ValueError as error:
            raise InvalidParameter(str(error)) from None
        values = self.source.values(query)
        return widen(values, per_period=period == ALL) if wide else values

    def periods(self, indicator: str, *, geography: str = "municipios_2007") -> list[int]:
        """The periods with values of ``indicator`` on ``geography``, oldest first."""
        values = self.indicators(indicator=indicator, period=ALL, geography=geography)
        return sorted(int(period) for period in values["period"].unique())

    def layer(self, name: str, *, bbox: Bbox | None = None, filter: str | None = None) -> gpd.GeoDataFrame:
        """A catalogue layer's features in its typed columns, in id order; ``bbox`` (lon/lat)
        keeps those intersecting it, ``filter`` those matching a CQL2 text expression."""
        try:
            layer = get_layer(name)
        except UnknownLayerError:
            raise NotFound(f"no layer {name!r}; see layers/ (the catalogue)") from None
        return self.source.layer(layer, bbox=bbox, cql2=filter)


def _many(value: str | Iterable[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


class LocalSource:
    """A store opened from settings; the values are the store's (withheld ones included)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store: Store = open_store(settings)

    def sheets(self) -> list[dict[str, Any]]:
        return [item.sheet(self.settings) for item in REGISTRY.values()]

    def values(self, query: FeedQuery) -> gpd.GeoDataFrame:
        return long_feed(self._read(get_layer("indicators")), query)

    def layer(self, layer: Layer, *, bbox: Bbox | None, cql2: str | None) -> gpd.GeoDataFrame:
        """The layer's rows, filtered by the store with the server's own CQL2 translation."""
        frame = self._read(layer).sort_values(layer.id, kind="stable").reset_index(drop=True)
        if bbox is None and cql2 is None:
            return frame
        condition = None if cql2 is None else parse_filter(layer, cql2)
        query = FeatureQuery(bbox=bbox, condition=condition, limit=max(len(frame), 1))
        kept = {record.properties[layer.id] for record in self.store.select(layer, query)}
        return frame[frame[layer.id].isin(kept)].reset_index(drop=True)

    def _read(self, layer: Layer) -> gpd.GeoDataFrame:
        if self.store.layer_version(layer) is None:
            raise NoData(f"layer {layer.name!r} was never loaded; {NO_DATA}")
        return self.store.read_layer(layer)

    def close(self) -> None:
        self.store.close()


class RemoteSource:
    """An observatory's HTTP API: the feed for values, the items endpoint for layers."""

    def __init__(self, url: str, *, token: str | None = None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.client = httpx.Client(base_url=url.rstrip("/"), timeout=60, headers=headers)

    def _get(self, path: str, params: Any = None) -> httpx.Response:
        try:
            response = self.client.get(path, params=params)
        except httpx.HTTPError as error:
            raise StoreUnavailable(f"cannot reach {self.client.base_url}: {error}") from None
        if response.status_code >= 400:
            detail = _problem_detail(response)
            error_type = {400: InvalidParameter, 401: Unauthorized, 403: Forbidden, 404: NotFound}.get(
                response.status_code, StoreUnavailable
            )
            raise error_type(f"{self.client.base_url}{path}: {detail}")
        return response

    def sheets(self) -> list[dict[str, Any]]:
        sheets: list[dict[str, Any]] = self._get("/indicators").json()["indicators"]
        return sheets

    def values(self, query: FeedQuery) -> gpd.GeoDataFrame:
        params: list[tuple[str, str | int]] = [
            ("period", query.period), ("geography", query.geography), ("format", "long"),
            *(("indicator_id", key) for key in query.indicator_ids),
            *(("theme", key) for key in query.themes),
            *(("municipality_code", key) for key in query.municipality_codes),
        ]  # fmt: skip
        features = self._get("/feeds/v1/indicators", params).json()["features"]
        if not features and not self._get("/collections/indicators/items", {"limit": 1}).json()["features"]:
            raise NoData(f"the observatory at {self.client.base_url} has no indicator values; {NO_DATA}")
        table = pd.DataFrame([feature["properties"] for feature in features], columns=LONG_COLUMNS)
        # JSON text, as the store, the CSV feed and a local source hold it
        table["input_periods"] = [
            None if periods is None else json.dumps(periods, sort_keys=True, separators=(",", ":"))
            for periods in table["input_periods"]
        ]
        return long_frame(table, [shapely.geometry.shape(feature["geometry"]) for feature in features])

    def layer(self, layer: Layer, *, bbox: Bbox | None, cql2: str | None) -> gpd.GeoDataFrame:
        params: dict[str, str | int] = {"limit": PAGE}
        if bbox is not None:
            params["bbox"] = ",".join(map(str, bbox))
        if cql2 is not None:
            params.update({"filter": cql2, "filter-lang": "cql2-text"})
        features: list[dict[str, Any]] = []
        page: dict[str, Any] = self._get(f"/collections/{layer.name}/items", params).json()
        while True:
            features += page["features"]
            following = [link["href"] for link in page["links"] if link["rel"] == "next"]
            if not following:
                break
            page = self._get(following[0]).json()
        if not features:
            return empty_frame(layer)
        return conform(layer, gpd.GeoDataFrame.from_features(features, crs=STORAGE_CRS))

    def close(self) -> None:
        self.client.close()


def _problem_detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail", response.text))
    except ValueError:
        return response.text[:200]
