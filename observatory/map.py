"""The planners' map page shell and the HTML error page browsers get.

The application itself is static (``static/app``: HTML, CSS, JavaScript over the JSON API, with
MapLibre GL JS and Chart.js vendored under ``static/vendor``), so it works with no internet. This is
the one place that fills its templates.
"""

from __future__ import annotations

import html
from pathlib import Path
from string import Template

APP_DIR = Path(__file__).resolve().parent / "static" / "app"

ERROR_TEXT = {
    "es": {
        "title": "No se encontró lo que buscaba",
        "back": "Volver al mapa",
        "status": "Error",
        "404": "La dirección no corresponde a ningún indicador, capa ni página del observatorio.",
        "other": "La dirección tiene un parámetro que el observatorio no acepta.",
        "technical": "Detalle técnico (en inglés):",
    },
    "en": {
        "title": "What you were looking for was not found",
        "back": "Back to the map",
        "status": "Error",
        "404": "The address matches no indicator, layer or page of the observatory.",
        "other": "The address has a parameter the observatory does not accept.",
        "technical": "Technical detail:",
    },
}
"""The error page's own words (the map's live in ``static/app/i18n.js``)."""


def _template(name: str) -> Template:
    return Template((APP_DIR / name).read_text(encoding="utf-8"))


def render_page(*, lang: str = "es") -> str:
    """The map application's page; its state (indicator, period, ...) is read from the URL in the browser."""
    title = "Observatorio Metropolitano del AMSS" if lang == "es" else "AMSS Metropolitan Observatory"
    return _template("index.html").substitute(lang=lang, title=html.escape(title))


def render_error(status: int, detail: str, *, lang: str = "es") -> str:
    """A page a planner can read for a 4xx (an API client gets the problem+json instead)."""
    words = ERROR_TEXT[lang if lang in ERROR_TEXT else "es"]
    heading = words["title"] if status == 404 else f"{words['status']} {status}"
    return _template("error.html").substitute(
        lang=lang if lang in ERROR_TEXT else "es",
        status=status,
        heading=html.escape(heading),
        explanation=html.escape(words["404"] if status == 404 else words["other"]),
        technical=html.escape(words["technical"]),
        detail=html.escape(detail),
        back=html.escape(words["back"]),
        href="/map" + ("?lang=en" if lang == "en" else ""),
    )


def preferred_lang(query_lang: str | None) -> str:
    """``lang=en`` as the map's English switch sets it; Spanish otherwise, whatever the browser's
    own language (the observatory is Spanish first, as the map is)."""
    return query_lang if query_lang in ERROR_TEXT else "es"
