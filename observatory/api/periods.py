"""Which periods each indicator has in the store, and ``period=latest`` on the indicators collection."""

from __future__ import annotations

from collections.abc import Callable

from starlette.datastructures import QueryParams

from layers import Layer, get_layer
from observatory.errors import InvalidParameter, NotFound
from observatory.store import Store

INDICATORS = "indicators"
LATEST = "latest"


def stored_periods(store: Store, indicator_id: str) -> list[int]:
    """The periods with a stored value of ``indicator_id``, oldest first."""
    values = store.read_layer(get_layer(INDICATORS))
    own = values.loc[values["indicator_id"] == indicator_id, "period"]
    return sorted(int(period) for period in own.dropna().unique())


def resolve_latest(store_of: Callable[[], Store], layer: Layer, params: QueryParams) -> QueryParams:
    """``period=latest`` on the indicators collection becomes the indicator's latest stored year.

    ``store_of`` is called only then, so other requests are checked without the database. It needs
    ``indicator_id`` (each indicator has its own latest period); an indicator with no
    stored value is a 404.
    """
    if layer.name != INDICATORS or params.get("period") != LATEST:
        return params
    indicator_ids = params.getlist("indicator_id")
    if len(indicator_ids) != 1:
        raise InvalidParameter(
            "period=latest needs exactly one indicator_id (each has its own latest period)"
        )
    periods = stored_periods(store_of(), indicator_ids[0])
    if not periods:
        raise NotFound(f"no stored values of indicator {indicator_ids[0]!r}")
    items = [(key, str(periods[-1]) if key == "period" else value) for key, value in params.multi_items()]
    return QueryParams(items)
