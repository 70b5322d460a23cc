"""The planners' map: an indicator choropleth of the 14 municipalities, built with folium.

Everything the page loads comes from this server (Leaflet and VectorGrid are vendored under
``static/vendor``), so it works with no internet and no external basemap.
"""

from __future__ import annotations

import html
import json
from typing import Any, cast

import folium
import numpy as np
import pandas as pd
from branca.element import Element, Figure, MacroElement
from folium.plugins import VectorGridProtobuf
from jinja2 import Template

from layers import get_layer
from observatory.errors import NotFound
from observatory.indicators import REGISTRY, Indicator
from observatory.indicators.compute import MUNICIPALITIES_2007
from observatory.store import Store
from observatory.tiles import TMS
from zoning import LAND_USE_CLASSES

PALETTE = ["#ffffcc", "#a1dab4", "#41b6c4", "#2c7fb8", "#253494"]
"""ColorBrewer YlGnBu, five classes."""
NO_DATA = "#bdbdbd"
CENTRE = (13.72, -89.18)
MAP_GEOGRAPHY = MUNICIPALITIES_2007
"""The map draws the 14 municipalities; values on the 2024 geography are in the API and feeds."""
ATTRIBUTION = (
    'Límites: <a href="https://www.geoboundaries.org">geoBoundaries</a> (CC BY 4.0) · '
    "Datos: DIGESTYC (Censo 2007), FISDL, OPAMSS"
)


PAGE_HEAD = """<link rel="icon" href="data:,">
<style>
  .panel { position: fixed; z-index: 1000; background: white; padding: 8px 10px; border-radius: 4px;
           box-shadow: 0 1px 5px rgba(0, 0, 0, .4); font: 12px sans-serif; }
  #indicator-picker { top: 10px; left: 60px; font-size: 13px; }
  #legend { bottom: 30px; right: 10px; max-width: 260px; }
  .feature-popup th { text-align: left; padding-right: 8px; }
  .swatch { display: inline-block; width: 14px; height: 14px; margin-right: 6px; border: 1px solid #777; }
</style>"""


class OfflineMap(folium.Map):
    """folium's map with Leaflet served from our static files instead of a CDN."""

    default_js = [("leaflet", "/static/vendor/leaflet/leaflet.js")]  # noqa: RUF012
    default_css = [("leaflet_css", "/static/vendor/leaflet/leaflet.css")]  # noqa: RUF012


class OfflineVectorGrid(VectorGridProtobuf):
    default_js = [  # noqa: RUF012
        ("vectorGrid", "/static/vendor/leaflet.vectorgrid/Leaflet.VectorGrid.bundled.min.js")
    ]


def format_value(value: float | None, unit: str) -> str:
    """Spanish-friendly display: whole numbers without decimals, small fractions with two."""
    if value is None or not np.isfinite(value):
        return "sin datos"
    digits = 0 if abs(value) >= 100 or float(value).is_integer() else 2
    return f"{value:,.{digits}f} {unit}".strip()


def class_breaks(values: pd.Series, classes: int = len(PALETTE)) -> list[float]:
    """Quantile class limits (upper bounds), duplicates removed, so small samples still work."""
    finite = values[np.isfinite(values)]
    if finite.empty:
        return []
    return sorted(set(np.quantile(finite, np.linspace(0, 1, classes + 1)[1:]).tolist()))


def colour(value: float | None, breaks: list[float]) -> str:
    if value is None or not np.isfinite(value) or not breaks:
        return NO_DATA
    index = int(np.searchsorted(breaks, value, side="left"))
    return PALETTE[min(index, len(breaks) - 1) * (len(PALETTE) - 1) // max(len(breaks) - 1, 1)]


DEFAULT_INDICATOR = "population_density"
"""The map a planner lands on, whenever it has values (the registry's order follows its modules)."""


def render_map(store: Store, *, indicator_id: str | None = None, period: int | None = None) -> str:
    """The whole HTML page for one indicator and period (the latest period by default)."""
    indicators = get_layer("indicators")
    values = pd.DataFrame(store.read_layer(indicators).drop(columns="geom"))
    if indicators.withheld is not None:  # a public page: withheld values are not shown
        values = indicators.withheld.public_frame(values)
    values = values[values["geography"].fillna(MAP_GEOGRAPHY) == MAP_GEOGRAPHY]
    municipalities = store.read_layer(get_layer("municipalities"))
    available = [item for item in REGISTRY.values() if (values["indicator_id"] == item.id).any()]
    if indicator_id is None:
        ids = [item.id for item in available]
        indicator_id = DEFAULT_INDICATOR if DEFAULT_INDICATOR in ids or not ids else ids[0]
    if indicator_id not in REGISTRY:
        raise NotFound(f"no indicator {indicator_id!r}; see /indicators")
    chosen = REGISTRY[indicator_id]
    own = values[values["indicator_id"] == indicator_id]
    periods = sorted(int(p) for p in own["period"].unique())
    if period is None and periods:
        period = periods[-1]
    if periods and period not in periods:
        raise NotFound(f"indicator {indicator_id!r} has no values for period {period}")
    current = own[own["period"] == period].set_index("municipality_code")["value"]
    breaks = class_breaks(current.astype(float))

    page = OfflineMap(location=CENTRE, zoom_start=11, tiles=None, control_scale=True, prefer_canvas=False)
    page.add_child(Attribution(page, ATTRIBUTION))
    title = f"<title>{html.escape(chosen.title_es)} — Observatorio AMSS</title>"
    root = cast(Figure, page.get_root())
    root.header.add_child(Element(title + PAGE_HEAD))
    choropleth = []
    if not municipalities.empty:
        choropleth.append(_add_choropleth(page, municipalities, values, chosen, current, breaks))
    _add_zoning_overlay(page)
    _add_overlay(page, "permits", "Permisos y calificaciones de lugar", beneath=choropleth)
    folium.LayerControl(collapsed=False).add_to(page)
    root.html.add_child(Element(_controls_html(available or [chosen], chosen, periods, period)))
    root.html.add_child(Element(_legend_html(chosen, period, breaks)))
    return root.render()


def _add_choropleth(
    page: folium.Map,
    municipalities: pd.DataFrame,
    values: pd.DataFrame,
    chosen: Indicator,
    current: pd.Series,
    breaks: list[float],
) -> folium.GeoJson:
    latest = values.sort_values("period").groupby(["municipality_code", "indicator_id"]).last()
    profile_fields = [item for item in REGISTRY.values() if (values["indicator_id"] == item.id).any()]
    features = []
    for row in municipalities.itertuples():
        value = current.get(row.code)
        properties: dict[str, Any] = {
            "code": row.code,
            "name": row.name,
            "department": row.department,
            "value": format_value(value, chosen.unit),
            "fill": colour(value, breaks),
        }
        for item in profile_fields:
            key = (row.code, item.id)
            if key in latest.index:
                entry = latest.loc[key]
                properties[f"p_{item.id}"] = f"{format_value(entry['value'], item.unit)} ({entry['period']})"
            else:
                properties[f"p_{item.id}"] = "sin datos"
        features.append({"type": "Feature", "geometry": row.geom.__geo_interface__, "properties": properties})
    fields = ["name", "department", "value", *(f"p_{item.id}" for item in profile_fields)]
    aliases = [
        "Municipio",
        "Departamento",
        chosen.title_es,
        *(item.title_es for item in profile_fields),
    ]
    choropleth = folium.GeoJson(
        {"type": "FeatureCollection", "features": features},
        name=f"{chosen.title_es}",
        style_function=lambda feature: {
            "fillColor": feature["properties"]["fill"], "color": "#333333", "weight": 1.2, "fillOpacity": 0.8,
        },
        highlight_function=lambda feature: {"weight": 3, "color": "#000000"},
        tooltip=folium.GeoJsonTooltip(fields=["name", "value"], aliases=["", ""]),
        popup=folium.GeoJsonPopup(fields=fields, aliases=aliases, class_name="municipality-profile"),
    )  # fmt: skip
    choropleth.add_to(page)
    return choropleth


class Attribution(MacroElement):
    """Credit for the data on the map (there is no tile layer to carry it)."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        {{ this.map.get_name() }}.attributionControl.addAttribution({{ this.text | tojson }});
        {% endmacro %}
        """
    )

    def __init__(self, page: folium.Map, text: str) -> None:
        super().__init__()
        self.map, self.text = page, text


class FeatureAtClick(MacroElement):
    """A click near a feature of a ticked overlay opens its record, fetched from our items API.

    Leaflet.VectorGrid 1.3's own click events break on points with Leaflet ≥ 1.5 (VectorGrid
    issues #148, #294), so the page asks the API for what lies within a few pixels instead. Values
    are set as text, never as HTML. Layers under the overlay (the choropleth) pass their clicks
    on too, since Leaflet gives the map only the clicks that hit no layer.
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        [{{ this.map.get_name() }}{% for source in this.sources %}, {{ source.get_name() }}{% endfor %}]
        .forEach(function (source) { source.on("click", function (event) {
            var map = {{ this.map.get_name() }};
            if (!map.hasLayer({{ this.overlay.get_name() }}) || map.getZoom() < {{ this.min_zoom }}) return;
            var at = map.latLngToContainerPoint(event.latlng);
            var sw = map.containerPointToLatLng([at.x - 6, at.y + 6]);
            var ne = map.containerPointToLatLng([at.x + 6, at.y - 6]);
            var bbox = [sw.lng, sw.lat, ne.lng, ne.lat].join(",");
            fetch("/collections/{{ this.collection }}/items?limit=1&bbox=" + bbox)
            .then(function (response) { return response.json(); })
            .then(function (body) {
                if (!body.features || !body.features.length) return;
                var found = body.features[0];
                var table = document.createElement("table");
                table.className = "feature-popup";
                Object.entries(found.properties).forEach(function (entry) {
                    if (entry[1] === null) return;
                    var row = table.insertRow();
                    var label = document.createElement("th");
                    label.textContent = entry[0];
                    row.appendChild(label);
                    row.insertCell().textContent = entry[1];
                });
                L.popup().setLatLng(event.latlng).setContent(table).openOn(map);
            });
        }); });
        {% endmacro %}
        """
    )

    def __init__(
        self,
        page: folium.Map,
        overlay: VectorGridProtobuf,
        collection: str,
        min_zoom: int,
        *,
        sources: list[folium.GeoJson],
    ) -> None:
        super().__init__()
        self.map, self.overlay, self.collection, self.min_zoom = page, overlay, collection, min_zoom
        self.sources = sources


def _add_overlay(page: folium.Map, name: str, title: str, *, beneath: list[folium.GeoJson]) -> None:
    """A vector-tile overlay from our own tile endpoint, hidden until ticked; click for records.

    ``beneath`` are the interactive layers drawn under it, whose clicks must reach it too.
    """
    layer = get_layer(name)
    style = {
        "weight": 1, "color": layer.style.color, "fillColor": layer.style.fill_color,
        "fill": True, "fillOpacity": 0.5, "radius": 3,
    }  # fmt: skip
    options = {
        "vectorTileLayerStyles": {name: style},
        "minZoom": layer.min_zoom,
        "maxNativeZoom": layer.max_zoom,
        "pane": "markerPane",  # above the choropleth, which sits in the overlay pane
    }
    overlay = OfflineVectorGrid(_tile_url(name), title, options, show=False)
    overlay.add_to(page)
    page.add_child(FeatureAtClick(page, overlay, name, layer.min_zoom, sources=beneath))


def _add_zoning_overlay(page: folium.Map) -> None:
    """The land-use plan coloured by Esquema Director class (a JavaScript style function)."""
    layer = get_layer("zoning")
    colours = json.dumps({c.id: c.colour for c in LAND_USE_CLASSES.values()})
    options = f"""{{
        "minZoom": {layer.min_zoom}, "maxNativeZoom": {layer.max_zoom}, "pane": "shadowPane",
        "vectorTileLayerStyles": {{"zoning": function(properties) {{
            var colours = {colours};
            return {{"weight": 0.5, "color": "{layer.style.color}", "fill": true, "fillOpacity": 0.6,
                     "fillColor": colours[properties.land_use_class] || "{layer.style.fill_color}"}};
        }}}}
    }}"""
    OfflineVectorGrid(_tile_url("zoning"), "Esquema Director (usos del suelo)", options, show=False).add_to(
        page
    )


def _tile_url(name: str) -> str:
    return f"/collections/{name}/tiles/{TMS.id}/{{z}}/{{y}}/{{x}}"


def _controls_html(
    available: list[Indicator], chosen: Indicator, periods: list[int], period: int | None
) -> str:
    themes: dict[str, list[Indicator]] = {}
    for item in available:
        themes.setdefault(item.theme, []).append(item)
    groups = "".join(
        f'<optgroup label="{html.escape(theme)}">'
        + "".join(
            f'<option value="{item.id}"{" selected" if item.id == chosen.id else ""}>'
            f"{html.escape(item.title_es)}</option>"
            for item in items
        )
        + "</optgroup>"
        for theme, items in themes.items()
    )
    period_options = "".join(
        f'<option value="{p}"{" selected" if p == period else ""}>{p}</option>' for p in periods
    )
    return f"""
<form id="indicator-picker" class="panel" method="get" action="/map">
  <strong>Observatorio Metropolitano del AMSS</strong><br>
  <label>Indicador <select name="indicator"
    onchange="this.form.period.disabled=true;this.form.submit()">{groups}</select></label>
  <label>Periodo <select name="period" onchange="this.form.submit()">{period_options}</select></label>
</form>"""


def _legend_html(chosen: Indicator, period: int | None, breaks: list[float]) -> str:
    rows, lower = [], None
    for limit in breaks:
        label = (
            f"≤ {format_value(limit, '')}"
            if lower is None
            else f"{format_value(lower, '')} – {format_value(limit, '')}"
        )
        rows.append(
            f'<div><span class="swatch" style="background:{colour(limit, breaks)}"></span>'
            f"{html.escape(label)}</div>"
        )
        lower = limit
    rows.append(f'<div><span class="swatch" style="background:{NO_DATA}"></span>sin datos</div>')
    sheet = json.dumps(chosen.formula, ensure_ascii=False)
    return f"""
<div id="legend" class="panel" title={html.escape(sheet)}>
  <strong>{html.escape(chosen.title_es)}</strong><br><em>{html.escape(chosen.unit)} · {period}</em>
  {"".join(rows)}
</div>"""
