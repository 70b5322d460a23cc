"""The indicator registry: ids -> compute functions and their technical sheet.

The API, the map, the notebooks and the partner feed all read this registry, so an indicator is
documented exactly once, where it is computed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd

from observatory.indicators.themes import THEMES
from observatory.settings import Settings, get_settings

Direction = Literal["higher_is_better", "lower_is_better", "neutral"]
Disclosure = Literal["public", "counts", "derived"]
"""How public outputs protect an indicator's values (see ``observatory.disclosure``): ``counts``,
values resting on counts of people or events, withheld when small and wherever they would give a
withheld one away; ``derived``, computed from published values only; ``public``, no person behind."""
ComputeFunction = Callable[..., pd.DataFrame]
"""Takes the input layers as keyword arguments (plus the declared options) and returns a frame
with the columns ``municipality_code`` (or ``METROPOLITAN_CODE`` for one value over the whole
geography), ``period`` (year) and ``value``, and optionally ``n``: the records behind the value."""

PERIOD_RULE = (
    "periodo: el año de sus registros anuales (hechos, trámites, denuncias, estadísticas, celdas del "
    "año); si ningún insumo es anual, el más reciente de los periodos de sus insumos (censo o capa "
    "de población, extracto de calles, año del ráster, año de la versión del plan); cada valor lista "
    "en input_periods el periodo de cada insumo que usó (census: la población del censo 2007)"
)
"""How a value's period is set, printed on every sheet (``compute.dated`` applies it; an
indicator may state its own)."""
METROPOLITAN_CODE = "AMSS"
"""The ``municipality_code`` of a value computed over the whole metropolitan area (an inequality
index across its municipalities, say), mapped on the union of the municipalities."""


@dataclass(frozen=True)
class Indicator:
    id: str
    theme: str
    title_es: str
    title_en: str
    formula: str
    unit: str
    direction: Direction
    inputs: tuple[str, ...]
    references: tuple[str, ...]
    compute: ComputeFunction
    census: bool = False
    """It divides by (or counts) the 2007 census population of ``municipalities``: its values list
    ``census`` among their input periods."""
    optional_inputs: tuple[str, ...] = ()
    """Inputs it can do without (it is computed, from an empty frame, when they are not loaded): the
    yearly population estimates, say, where the census stands in."""
    options: tuple[str, ...] = ()
    """Names of settings passed to ``compute`` as keyword arguments; the formula names each as
    ``{name}``, which the sheet prints as its value."""
    sdg_target: str | None = None
    """The Sustainable Development Goal indicator it matches (``11.2.1``), for partners who publish
    by SDG target."""
    iso37120: str | None = None
    """The ISO 37120 (sustainable cities) indicator it matches (``10.3``)."""
    disclosure: Disclosure = "public"
    period_rule: str = PERIOD_RULE
    part_of: str | None = None
    """The count indicator whose records include this one's (homicides among every incident): an
    outsider knows the part is at most the whole, and disclosure control knows it too."""

    def sheet(self, settings: Settings | None = None) -> dict[str, Any]:
        """The technical sheet, as published by the API, with the settings in force printed as
        their values (a reader cannot look up ``legal_limit_business_days``)."""
        settings = settings or get_settings()
        values = {name: getattr(settings, name) for name in self.options}
        formula = self.formula
        for name, value in values.items():
            shown = f"{value:g}" if isinstance(value, float) else str(value)
            formula = formula.replace("{" + name + "}", f"{shown} (OBSERVATORY_{name.upper()})")
        return {
            "id": self.id,
            "theme": self.theme,
            "theme_title": THEMES[self.theme].title(),
            "title": {"es": self.title_es, "en": self.title_en},
            "formula": formula,
            "settings": {f"OBSERVATORY_{name.upper()}": value for name, value in values.items()},
            "unit": self.unit,
            "direction": self.direction,
            "inputs": list(self.inputs),
            "references": list(self.references),
            "period_rule": self.period_rule,
            "sdg_target": self.sdg_target,
            "iso37120": self.iso37120,
            "disclosure": {"policy": self.disclosure, "method": DISCLOSURE_METHODS[self.disclosure]},
        }


DISCLOSURE_METHODS: dict[str, str | None] = {
    "public": None,
    "counts": "supresión primaria (recuentos de 1 al umbral OBSERVATORY_SMALL_N − 1, 4 por defecto: "
    "valor reservado) y complementaria entre los distritos, su municipio de 2024 y el total "
    "metropolitano, verificada con un programa lineal: ningún valor reservado queda determinado por "
    "los publicados (observatory/disclosure.py)",
    "derived": "calculado solo a partir de los valores publicados: un valor reservado no entra en él "
    "(sin valor donde falta, o el que dan solo los publicados, como dice su fórmula)",
}
"""What each disclosure policy does, for the technical sheets."""
REGISTRY: dict[str, Indicator] = {}


def indicator(
    *,
    id: str,
    theme: str,
    title_es: str,
    title_en: str,
    formula: str,
    unit: str,
    direction: Direction,
    inputs: tuple[str, ...],
    references: tuple[str, ...] = (),
    census: bool = False,
    optional_inputs: tuple[str, ...] = (),
    options: tuple[str, ...] = (),
    sdg_target: str | None = None,
    iso37120: str | None = None,
    disclosure: Disclosure = "public",
    period_rule: str = PERIOD_RULE,
    part_of: str | None = None,
) -> Callable[[ComputeFunction], ComputeFunction]:
    """Register the decorated function as the computation of indicator ``id``."""

    def register(function: ComputeFunction) -> ComputeFunction:
        if id in REGISTRY:
            raise ValueError(f"indicator {id!r} registered twice")
        if theme not in THEMES:
            raise ValueError(f"indicator {id!r}: unknown theme {theme!r}; see indicators/themes.py")
        if not set(optional_inputs) <= set(inputs):
            raise ValueError(f"indicator {id!r}: optional inputs {optional_inputs} must be among its inputs")
        unprinted = [name for name in options if "{" + name + "}" not in formula]
        if unprinted:
            raise ValueError(f"indicator {id!r}: its formula must name the settings {unprinted} as {{name}}")
        REGISTRY[id] = Indicator(
            id=id, theme=theme, title_es=title_es, title_en=title_en, formula=formula, unit=unit,
            direction=direction, inputs=inputs, references=references, compute=function,
            census=census, optional_inputs=optional_inputs, options=options, sdg_target=sdg_target,
            iso37120=iso37120, disclosure=disclosure, period_rule=period_rule, part_of=part_of,
        )  # fmt: skip
        return function

    return register
