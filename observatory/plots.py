"""Plotting helpers for the analysts' frames (``Observatory.indicators``): a choropleth (static with
matplotlib, or interactive with folium), a time series and a ranking.

The interactive map carries Leaflet inline from the vendored copy, and no basemap, so a notebook
shows it with no internet.
"""

from __future__ import annotations

from pathlib import Path

import folium
import geopandas as gpd
import pandas as pd
from matplotlib.axes import Axes

from observatory.errors import InvalidParameter

LEAFLET = Path(__file__).resolve().parent / "static" / "vendor" / "leaflet"
CMAP = "YlGnBu"


def choropleth(
    values: gpd.GeoDataFrame, column: str = "value", *, title: str | None = None, interactive: bool = False
) -> Axes | folium.Map:
    """The values of one indicator and period on their municipalities' outlines.

    ``values``: a tidy frame of one indicator (``column`` = ``value``) or a wide frame (``column``
    = an indicator id). Static (matplotlib) by default; ``interactive`` gives a folium map that
    works offline.
    """
    _one_indicator(values, column)
    if interactive:
        return _offline_explore(values, column)
    axes = values.plot(column=column, cmap=CMAP, legend=True, edgecolor="#333333", figsize=(7, 6),
                       missing_kwds={"color": "#eeeeee", "hatch": "//", "label": "sin dato"})  # fmt: skip
    axes.set_title(title or _title(values, column))
    axes.set_axis_off()
    return axes


def time_series(values: pd.DataFrame, *, title: str | None = None) -> Axes:
    """One line per municipality over the periods of one indicator (a tidy frame, ``period="all"``)."""
    _one_indicator(values, "value")
    table = values.pivot_table(index="period", columns="municipality_name", values="value")
    axes = table.plot(marker="o", figsize=(8, 4))
    axes.set_title(title or _title(values, "value"))
    axes.set_xlabel("período")
    axes.set_ylabel(str(values["unit"].iloc[0]))
    return axes


def ranking(values: pd.DataFrame, column: str = "value", *, title: str | None = None) -> Axes:
    """The municipalities ranked by one indicator, highest on top; missing values left out."""
    _one_indicator(values, column)
    ranked = values.dropna(subset=[column]).sort_values(column)
    axes = ranked.plot.barh(x="municipality_name", y=column, legend=False, color="#2c7fb8", figsize=(7, 5))
    axes.set_title(title or _title(values, column))
    axes.set_ylabel("")
    return axes


def _one_indicator(values: pd.DataFrame, column: str) -> None:
    if values.empty:
        raise InvalidParameter("nothing to plot: the frame has no rows")
    if column not in values.columns:
        columns = ", ".join(map(str, values.columns))
        raise InvalidParameter(f"no column {column!r} in the frame; columns: {columns}")
    if "indicator_id" in values.columns and values["indicator_id"].nunique() > 1:
        raise InvalidParameter("the frame holds several indicators: select one (indicator=...)")


def _title(values: pd.DataFrame, column: str) -> str:
    if "title_es" in values.columns:
        first = values.iloc[0]
        periods = sorted(values["period"].unique())
        span = f"{periods[0]}" if len(periods) == 1 else f"{periods[0]}–{periods[-1]}"
        return f"{first['title_es']} ({first['unit']}), {span}"
    return column


class _InlineLeafletMap(folium.Map):
    """folium's map with no CDN scripts: Leaflet is written into the page itself."""

    default_js: list[tuple[str, str]] = []  # noqa: RUF012
    default_css: list[tuple[str, str]] = []  # noqa: RUF012


def _offline_explore(values: gpd.GeoDataFrame, column: str) -> folium.Map:
    page = _InlineLeafletMap(tiles=None, control_scale=True)
    header = page.get_root().header  # type: ignore[attr-defined]
    for tag, name in (("style", "leaflet.css"), ("script", "leaflet.js")):
        header.add_child(folium.Element(f"<{tag}>{(LEAFLET / name).read_text(encoding='utf-8')}</{tag}>"))
    values.explore(column=column, m=page, cmap=CMAP, legend=False)
    west, south, east, north = values.total_bounds
    page.fit_bounds([[south, west], [north, east]])
    return page
