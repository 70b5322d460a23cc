"""The versioned indicator feed for partner observatories, each indicator's periods, and whole
collections as files (CSV, GeoJSON, GeoPackage, FlatGeobuf, GeoParquet).

The feed's version is in its path (``/feeds/v1``); its JSON Schema is served at
``/feeds/v1/schema.json`` and its changes are listed in docs/feed/CHANGELOG.md.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from starlette.background import BackgroundTask

from layers import get_layer
from observatory.access import Role
from observatory.api.access import audit, principal
from observatory.api.caching import conditional
from observatory.api.features import layer_of, store_of
from observatory.api.openapi import documented
from observatory.api.periods import INDICATORS
from observatory.api.public_url import current_url, public_base
from observatory.api.responses import GeoJSONResponse
from observatory.errors import InvalidParameter, NotFound
from observatory.feed import (
    ALL,
    FEED_VERSION,
    GEOGRAPHIES,
    LATEST,
    FeedQuery,
    feed_document,
    feed_schema,
    feed_table,
    long_feed,
)
from observatory.files import FORMATS, public_layer, write_frame
from observatory.indicators import REGISTRY
from observatory.indicators.themes import THEMES

router = APIRouter()
FEED_PATH = "/feeds/v1"
FEED_KEYS = {"period", "format", "geography", "indicator_id", "theme", "municipality_code", "f"}


class SchemaResponse(JSONResponse):
    media_type = "application/schema+json"


def _any_of(known: Iterable[str]) -> dict[str, Any]:
    """The OpenAPI schema of a repeatable key whose values are ids from a known list."""
    return {"items": {"type": "string", "enum": list(known)}}


@router.get(FEED_PATH, summary="The indicator feed, version 1: its links and schema version")
async def feed_landing(request: Request) -> dict[str, Any]:
    base = f"{public_base(request)}{FEED_PATH}"
    return {
        "feed_version": FEED_VERSION,
        "links": [
            {"rel": "self", "type": "application/json", "href": base},
            {"rel": "data", "type": "application/geo+json", "href": f"{base}/indicators"},
            {"rel": "describedby", "type": "application/schema+json", "href": f"{base}/schema.json"},
        ],
    }  # fmt: skip


@router.get(
    f"{FEED_PATH}/indicators",
    summary="Every indicator for every municipality, for a period or the latest, long or wide",
    response_class=GeoJSONResponse,
    responses={200: {"content": {"text/csv": {}}}},
    openapi_extra=documented(store=True, conditional=True),
)
def indicators_feed(
    request: Request,
    period: Annotated[
        str,
        Query(
            pattern="^(latest|all|[0-9]{1,4})$", description="a year, latest (each indicator's own) or all"
        ),
    ] = LATEST,
    format: Annotated[
        Literal["long", "wide"], Query(description="long: a feature per value; wide: per municipality")
    ] = "long",
    geography: Annotated[
        Literal["municipios_2007", "municipios_2024"], Query(description="boundary version")
    ] = "municipios_2007",
    indicator_id: Annotated[
        tuple[str, ...],
        Query(description="any of these indicators (repeat)", json_schema_extra=_any_of(REGISTRY)),
    ] = (),
    theme: Annotated[
        tuple[str, ...], Query(description="any of these themes (repeat)", json_schema_extra=_any_of(THEMES))
    ] = (),
    municipality_code: Annotated[tuple[str, ...], Query(description="any of these (repeat)")] = (),
    f: Annotated[
        Literal["geojson", "csv"], Query(description="GeoJSON, or CSV without geometry")
    ] = "geojson",
) -> Response:
    unknown = sorted(set(request.query_params) - FEED_KEYS)
    if unknown:
        raise InvalidParameter(
            f"unknown parameter {unknown[0]!r}; the feed takes {', '.join(sorted(FEED_KEYS))}"
        )
    try:
        query = FeedQuery(
            period=LATEST if period == LATEST else ALL if period == ALL else int(period),
            geography=geography,
            indicator_ids=indicator_id,
            themes=theme,
            municipality_codes=municipality_code,
        )
    except ValueError as error:
        raise InvalidParameter(str(error)) from None
    store = store_of(request)
    layer = get_layer(INDICATORS)

    def build() -> Response:
        long = long_feed(public_layer(store, layer), query)
        schema = f"{public_base(request)}{FEED_PATH}/schema.json"
        headers = {"Link": f'<{schema}>; rel="describedby"'}
        if f == "csv":
            headers["Content-Disposition"] = f'inline; filename="indicators-{format}.csv"'
            table = feed_table(long, query, wide=format == "wide")
            return Response(table, media_type="text/csv; charset=utf-8", headers=headers)
        document = feed_document(long, query, wide=format == "wide")
        document["links"] = [
            {"rel": "self", "type": "application/geo+json", "href": str(current_url(request))},
            {
                "rel": "alternate",
                "type": "text/csv",
                "href": str(current_url(request).include_query_params(f="csv")),
            },
            {"rel": "describedby", "type": "application/schema+json", "href": schema},
        ]
        return GeoJSONResponse(document, headers=headers)

    return conditional(request, store, layer, build)


@router.get(
    f"{FEED_PATH}/schema.json",
    summary="JSON Schema of the indicator feed, version 1",
    response_class=SchemaResponse,
)
async def feed_schema_document(request: Request) -> SchemaResponse:
    return SchemaResponse(feed_schema(f"{public_base(request)}{FEED_PATH}/schema.json"))


@router.get(
    "/indicators/{indicator_id}/periods",
    summary="The periods stored for an indicator, per geography, and the latest",
    openapi_extra=documented(store=True, not_found=True),
)
def periods(request: Request, indicator_id: str) -> dict[str, Any]:
    if indicator_id not in REGISTRY:
        raise NotFound(f"no indicator {indicator_id!r}; see /indicators")
    values = store_of(request).read_layer(get_layer(INDICATORS))
    own = values[values["indicator_id"] == indicator_id]
    geographies = {}
    for geography in GEOGRAPHIES:
        years = sorted(int(year) for year in own.loc[own["geography"] == geography, "period"].unique())
        geographies[geography] = {"periods": years, "latest": max(years, default=None)}
    every = sorted(int(year) for year in own["period"].unique())
    return {"indicator_id": indicator_id, "periods": every, "latest": max(every, default=None),
            "geographies": geographies}  # fmt: skip


@router.get(
    "/collections/{collection_id}/download",
    summary="The whole collection as one file: CSV or XLSX (WKT), GeoJSON, GeoPackage, FlatGeobuf, Parquet",
    response_class=FileResponse,
    responses={200: {"content": {item.media_type: {} for item in FORMATS.values()}}},
    openapi_extra=documented(store=True, conditional=True, not_found=True),
)
def download(
    request: Request,
    collection_id: str,
    f: Annotated[
        Literal["csv", "xlsx", "geojson", "gpkg", "fgb", "parquet"], Query(description="file format")
    ] = "gpkg",
) -> Response:
    layer = layer_of(request, collection_id)
    file_format = FORMATS[f]
    store = store_of(request)
    caller = principal(request)
    # An analyst's download holds the values public outputs withhold (restricted fields): audited.
    whole = layer.withheld is not None and caller.role >= Role.ANALYST
    if whole:
        audit(request, caller, layer.name, 200)

    def build() -> Response:
        folder = Path(tempfile.mkdtemp(prefix="observatory-download-"))
        try:
            path = folder / f"{layer.name}{file_format.suffix}"
            frame = store.read_layer(layer) if whole else public_layer(store, layer)
            write_frame(frame, path, file_format, name=layer.name)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return FileResponse(
            path, media_type=file_format.media_type, filename=path.name,
            background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True),
        )  # fmt: skip

    return conditional(request, store, layer, build, links=False)
