"""Spanish or English titles and descriptions: ``lang=es|en`` first, then ``Accept-Language``.

Spanish is the observatory's language and the default. Responses that carry localised text say
which language they are in (``Content-Language``) and that they vary with ``Accept-Language``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from fastapi import Depends, Query, Request
from fastapi.responses import JSONResponse

from observatory.errors import InvalidParameter

Language = Literal["es", "en"]
LANGUAGES: tuple[Language, ...] = ("es", "en")
DEFAULT: Language = "es"


def language(request: Request, lang: str | None = None) -> Language:
    """The language a request asks for: its ``lang`` parameter, else the best ``Accept-Language``
    range we serve (by q-value, then order), else Spanish."""
    asked = lang or request.query_params.get("lang")
    if asked is not None:
        if asked not in LANGUAGES:
            raise InvalidParameter(f"lang={asked!r}: one of {', '.join(LANGUAGES)}")
        return "en" if asked == "en" else "es"
    best: tuple[float, int, Language] | None = None
    for position, item in enumerate(request.headers.get("accept-language", "").split(",")):
        tag, _, params = item.strip().partition(";")
        primary = tag.strip().lower().split("-")[0]
        quality = _quality(params)
        served_tag = next((served for served in LANGUAGES if served == primary), None)
        if primary == "*":
            served_tag = DEFAULT
        if served_tag is None or quality <= 0:
            continue
        if best is None or (quality, -position) > (best[0], -best[1]):
            best = (quality, position, served_tag)
    return best[2] if best else DEFAULT


async def _language_parameter(
    request: Request,
    lang: Annotated[Language | None, Query(description="es or en; else Accept-Language, else es")] = None,
) -> Language:
    """``language`` as a dependency: async, so endpoints that need no database keep answering
    on the event loop when every worker thread waits on it."""
    return language(request, lang)


Lang = Annotated[Language, Depends(_language_parameter)]
"""An endpoint parameter: the language of the request (and ``lang`` in the OpenAPI document)."""


QVALUE = re.compile(r"0(\.\d{0,3})?|1(\.0{0,3})?")
"""RFC 9110 12.4.2: a weight is 0 to 1 with at most three decimals."""


def _quality(params: str) -> float:
    """A range's weight; one that is no RFC 9110 qvalue (``NaN``, ``2``, ``-1``) counts as 0."""
    for param in params.split(";"):
        name, _, value = param.strip().partition("=")
        if name.strip() == "q":
            return float(value) if QVALUE.fullmatch(value.strip()) else 0.0
    return 1.0


def localized(body: dict[str, Any], lang: Language, *, media_type: str = "application/json") -> JSONResponse:
    """A JSON response in ``lang``, saying so for clients and caches."""
    return JSONResponse(
        body, media_type=media_type, headers={"Content-Language": lang, "Vary": "Accept-Language"}
    )


def pick(spanish: str, english: str, lang: Language) -> str:
    return english if lang == "en" else spanish
