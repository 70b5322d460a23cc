"""A composite index in the manner of UN-Habitat's City Prosperity Index (CPI), from stored values.

Which indicators enter each dimension, their weights and their benchmarks are data
(``composite.toml``), each benchmark with its source. The index reads the values the other
indicators stored, so it is computed in a second pass (``compute_indicators`` runs every indicator
whose input is the ``indicators`` layer after the others): one indicator ``cpi_<dimension>`` per
dimension and ``cpi_overall``, theme ``composite``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from observatory.errors import NotFound
from observatory.indicators.registry import METROPOLITAN_CODE, REGISTRY, ComputeFunction, indicator

SPEC_FILE = Path(__file__).with_name("composite.toml")
THEME = "composite"
VALUES = "indicators"
"""The input of a composite indicator: the stored values of the others."""
OVERALL = "cpi_overall"
REFERENCES = (
    "UN-Habitat (2016). Measurement of city prosperity: methodology and metadata (City Prosperity Index)",
    "OECD/JRC (2008). Handbook on constructing composite indicators: min–max normalisation, "
    "weights, linear and geometric aggregation (section 6), uncertainty and sensitivity analysis",
)
GEOMETRIC_FLOOR = 1.0
"""Under geometric aggregation a dimension score below this counts as this (on the 0–100 scale):
a score of 0 would make the product 0 whatever the other dimensions, and its logarithm undefined."""
AGGREGATION = (
    "agregación aritmética (media ponderada: lineal y totalmente compensatoria, un punto perdido en "
    "una dimensión se compensa con un punto ponderado ganado en otra; OECD/JRC 2008, sección 6)"
)


@dataclass(frozen=True)
class Component:
    """One indicator in a dimension, scored 0 at its worst benchmark and 100 at its best."""

    indicator_id: str
    dimension: str
    weight: float
    min: float
    max: float
    source: str
    lower_is_better: bool


@dataclass(frozen=True)
class Dimension:
    id: str
    title_es: str
    title_en: str
    weight: float


@dataclass(frozen=True)
class CompositeSpec:
    dimensions: dict[str, Dimension]
    components: tuple[Component, ...]

    def members(self, dimension: str) -> list[Component]:
        return [c for c in self.components if c.dimension == dimension]


class SpecError(ValueError):
    """A composite spec that cannot be used; the message names the file and the entry."""


def read_spec(path: Path = SPEC_FILE) -> CompositeSpec:
    """The spec in ``path``, checked against the registry (ids, directions) and for sound numbers."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    dimensions = {
        key: Dimension(key, entry["title_es"], entry["title_en"], _positive(entry["weight"], path, key))
        for key, entry in data.get("dimensions", {}).items()
    }
    components = []
    for number, entry in enumerate(data.get("indicators", []), start=1):
        where = f"{path.name}, [[indicators]] #{number} ({entry.get('id')!r})"
        if entry.get("id") not in REGISTRY:
            raise SpecError(f"{where}: no such indicator in the registry")
        direction = REGISTRY[entry["id"]].direction
        if direction == "neutral":
            raise SpecError(f"{where}: a neutral indicator has no better end to score towards")
        if entry.get("dimension") not in dimensions:
            raise SpecError(f"{where}: dimension {entry.get('dimension')!r} is not under [dimensions]")
        if not entry["min"] < entry["max"]:
            raise SpecError(f"{where}: min must be below max")
        if not entry.get("source"):
            raise SpecError(f"{where}: every benchmark needs its source")
        components.append(
            Component(
                indicator_id=entry["id"], dimension=entry["dimension"],
                weight=_positive(entry["weight"], path, where), min=float(entry["min"]),
                max=float(entry["max"]), source=entry["source"],
                lower_is_better=direction == "lower_is_better",
            )
        )  # fmt: skip
    spec = CompositeSpec(dimensions, tuple(components))
    empty = [key for key in dimensions if not spec.members(key)]
    if empty:
        raise SpecError(f"{path.name}: dimension(s) {', '.join(empty)} have no indicator")
    return spec


def _positive(weight: float, path: Path, where: str) -> float:
    if not weight > 0:
        raise SpecError(f"{path.name}, {where}: weight must be positive, not {weight}")
    return float(weight)


def normalise(values: pd.Series, component: Component) -> pd.Series:
    """0–100 scores between the component's benchmarks, in its direction; beyond them, clipped."""
    share = (values - component.min) / (component.max - component.min)
    if component.lower_is_better:
        share = 1 - share
    return 100 * share.clip(0, 1)


def weighted_mean(scores: pd.DataFrame, weights: pd.Series) -> pd.Series:
    """Row means with the given column weights (normalised to sum 1); missing if any score is."""
    weights = weights / weights.sum()
    return (scores[weights.index] * weights).sum(axis=1, min_count=len(weights))


def component_scores(values: pd.DataFrame, spec: CompositeSpec, period: int) -> pd.DataFrame:
    """Each component's score per municipality for ``period``, from its latest value up to it.

    ``values`` holds stored indicator values (``indicator_id``, ``municipality_code``, ``period``,
    ``value``) of one geography. Each municipality contributes, for each indicator, its most recent
    value not after ``period`` (the CPI's "latest available data"); without one it is missing.
    """
    local = values[(values["municipality_code"] != METROPOLITAN_CODE) & (values["period"] <= period)]
    latest = local.sort_values("period").drop_duplicates(["indicator_id", "municipality_code"], keep="last")
    table = latest.pivot(index="municipality_code", columns="indicator_id", values="value")
    return pd.DataFrame(
        {
            c.indicator_id: normalise(table[c.indicator_id].astype(float), c)
            if c.indicator_id in table
            else pd.Series(np.nan, index=table.index)
            for c in spec.components
        },
        index=table.index,
    )


def dimension_scores(values: pd.DataFrame, spec: CompositeSpec, period: int) -> pd.DataFrame:
    """Per municipality, one column per dimension: the weighted mean of its components' scores."""
    scores = component_scores(values, spec, period)
    return pd.DataFrame(
        {
            key: weighted_mean(
                scores, pd.Series({c.indicator_id: c.weight for c in spec.members(key)}, dtype=float)
            )
            for key in spec.dimensions
        },
        index=scores.index,
    )


def overall_scores(dimensions: pd.DataFrame, weights: pd.Series) -> pd.Series:
    """The overall index: the weighted mean of the dimensions; missing if any dimension is."""
    return weighted_mean(dimensions, weights)


def geometric_scores(
    dimensions: pd.DataFrame, weights: pd.Series, *, floor: float = GEOMETRIC_FLOOR
) -> pd.Series:
    """The overall index under geometric aggregation: :math:`\\prod_d \\max(s_d, f)^{w_d}` with the
    weights normalised to sum 1 and the floor :math:`f` (``GEOMETRIC_FLOOR``); missing if any
    dimension is.

    Notes
    -----
    Only partly compensatory (OECD/JRC 2008, section 6.2): the marginal gain of a point in a
    dimension is larger the lower that dimension's score, so a unit weak in one dimension cannot
    make it up fully with another. Used for the sensitivity analysis; the published index is the
    arithmetic mean.
    """
    weights = weights / weights.sum()
    logs = np.log(dimensions[weights.index].clip(lower=floor))
    return np.exp((logs * weights).sum(axis=1, min_count=len(weights)))


def dimension_weights(spec: CompositeSpec) -> pd.Series:
    return pd.Series({key: d.weight for key, d in spec.dimensions.items()}, dtype=float)


def _per_period(
    indicators: gpd.GeoDataFrame,
    municipalities: gpd.GeoDataFrame,
    spec: CompositeSpec,
    score: Callable[[pd.DataFrame], pd.Series],
    scored: CompositeSpec | None = None,
) -> pd.DataFrame:
    """``score`` (dimension scores -> one value per municipality) for every period any component of
    ``spec`` has; only the dimensions of ``scored`` (by default all of ``spec``) are scored, as a
    dimension's scores depend on its own components alone."""
    codes = set(municipalities["code"])
    scored = scored or spec
    periods = indicators.loc[
        indicators["indicator_id"].isin({c.indicator_id for c in spec.components}), "period"
    ]
    columns = ["indicator_id", "municipality_code", "period", "value"]
    own = indicators.loc[
        indicators["indicator_id"].isin({c.indicator_id for c in scored.components}), columns
    ]
    parts = []
    for period in sorted(periods.dropna().astype(int).unique()):
        value = score(dimension_scores(own, scored, period)).dropna()
        value = value[value.index.isin(codes)]
        vintages = component_periods(own, period)
        parts.append(
            pd.DataFrame(
                {
                    "municipality_code": value.index,
                    "period": period,
                    "value": value.values,
                    "input_periods": [vintages.get(code, {}) for code in value.index],
                }
            )
        )
    if not parts:
        return pd.DataFrame({"municipality_code": [], "period": [], "value": [], "input_periods": []})
    return pd.concat(parts, ignore_index=True)


def component_periods(values: pd.DataFrame, period: int) -> dict[str, dict[str, int]]:
    """Per municipality, the period of each component value an index of ``period`` rests on (its
    latest not after ``period``, as ``component_scores`` takes): a 2024 index on 2007 access says so."""
    local = values[(values["municipality_code"] != METROPOLITAN_CODE) & (values["period"] <= period)]
    latest = local.groupby(["municipality_code", "indicator_id"])["period"].max().astype(int)
    return {
        str(code): {str(key): int(year) for key, year in rows.droplevel(0).items()}
        for code, rows in latest.groupby(level=0)
    }


def sensitivity(
    dimensions: pd.DataFrame, weights: pd.Series, *, draws: int = 1000, seed: int = 0
) -> pd.DataFrame:
    """How each municipality's rank on the overall index moves when the dimension weights do, and
    when the aggregation does.

    Notes
    -----
    Weights are drawn ``draws`` times from a flat Dirichlet distribution over the dimensions
    (every weighting equally likely; OECD/JRC 2008, uncertainty analysis), with numpy's seeded
    generator, so a seed always gives the same table. Rank 1 is the highest score (ties share the
    best rank); municipalities missing any dimension are left out. Beside them, the score and rank
    under the spec's weights with geometric instead of arithmetic aggregation
    (:func:`geometric_scores`, dimension scores floored at ``GEOMETRIC_FLOOR``): a municipality
    whose rank changes there owes it to compensation between dimensions.

    Returns
    -------
    DataFrame
        Per municipality: ``score`` and ``rank`` under the spec's weights (arithmetic, as
        published), then ``rank_min``, ``rank_p05``, ``rank_median``, ``rank_p95``, ``rank_max``
        over the draws, then ``score_geometric`` and ``rank_geometric``.
    """
    complete = dimensions.dropna()
    rng = np.random.default_rng(seed)
    drawn = rng.dirichlet(np.ones(len(weights)), size=draws)
    totals = complete[weights.index].to_numpy() @ drawn.T  # municipalities × draws
    ranks = pd.DataFrame(totals, index=complete.index).rank(ascending=False, method="min")
    nominal = overall_scores(complete, weights)
    geometric = geometric_scores(complete, weights)
    return pd.DataFrame(
        {
            "score": nominal,
            "rank": nominal.rank(ascending=False, method="min").astype(int),
            "rank_min": ranks.min(axis=1).astype(int),
            "rank_p05": ranks.quantile(0.05, axis=1),
            "rank_median": ranks.median(axis=1),
            "rank_p95": ranks.quantile(0.95, axis=1),
            "rank_max": ranks.max(axis=1).astype(int),
            "score_geometric": geometric,
            "rank_geometric": geometric.rank(ascending=False, method="min").astype(int),
        }
    ).sort_values("rank")


def stored_sensitivity(
    stored: pd.DataFrame, *, geography: str, period: int | None, draws: int, seed: int
) -> tuple[int, pd.DataFrame]:
    """:func:`sensitivity` of the overall index from stored values of one geography, for ``period``
    (by default the latest with an overall value); returns the period and the table."""
    values = stored[stored["geography"] == geography]
    periods = sorted(int(p) for p in values.loc[values["indicator_id"] == OVERALL, "period"].unique())
    if not periods:
        raise NotFound(f"no {OVERALL} values on {geography!r}: run `observatory compute` first")
    if period is None:
        period = int(periods[-1])  # a Python int: numpy's does not serialise to JSON
    elif period not in periods:
        raise NotFound(f"no {OVERALL} values for {period} on {geography!r}; periods: {periods}")
    codes = values.loc[values["indicator_id"] == OVERALL, "municipality_code"].unique()
    dimensions = dimension_scores(values, SPEC, period)
    table = sensitivity(
        dimensions[dimensions.index.isin(codes)], dimension_weights(SPEC), draws=draws, seed=seed
    )
    return period, table


def jsonable_ranks(table: pd.DataFrame) -> list[dict[str, str | int | float]]:
    """The rows of a :func:`sensitivity` table as plain Python values (JSON has no numpy types)."""
    return [
        {"municipality_code": str(code), **{key: value.item() if isinstance(value, np.generic) else value
                                            for key, value in row.items()}}
        for code, row in table.to_dict("index").items()
    ]  # fmt: skip


def _describe(spec: CompositeSpec, keys: list[str]) -> str:
    parts = []
    for key in keys:
        members = ", ".join(
            f"{c.indicator_id} (peso {c.weight:g}, {c.min:g}–{c.max:g}"
            f"{', menor es mejor' if c.lower_is_better else ''})"
            for c in spec.members(key)
        )
        parts.append(f"{key}: {members}")
    return "; ".join(parts)


PERIOD_RULE = (
    "periodo P: cada año en que algún componente del índice (de cualquiera de sus dimensiones) tiene "
    "valor; cada componente toma su valor más "
    "reciente no posterior a P (un índice de 2024 puede descansar en valores de 2007); input_periods "
    "da el año de cada componente de cada valor"
)


def _register(spec: CompositeSpec) -> None:
    scoring = (
        "cada indicador normalizado a 0–100 entre sus referencias mín–máx (invertido si menor es mejor, "
        "recortado fuera de ellas), con el último periodo disponible no posterior al del índice; "
        + AGGREGATION
        + ": "
    )
    missing = "; sin valor (ninguna fila) si falta cualquiera de sus componentes"
    for key, dimension in spec.dimensions.items():
        indicator(
            id=f"cpi_{key}", theme=THEME,
            title_es=f"Índice compuesto: {dimension.title_es}",
            title_en=f"Composite index: {dimension.title_en}",
            formula=scoring + "media ponderada de " + _describe(spec, [key]) + missing,
            unit="puntos (0–100)", direction="higher_is_better", inputs=(VALUES, "municipalities"),
            disclosure="derived", period_rule=PERIOD_RULE,
            references=(*REFERENCES, *sorted({c.source for c in spec.members(key)})),
        )(_dimension_function(spec, key))  # fmt: skip
    weights = ", ".join(f"{key} {d.weight:g}" for key, d in spec.dimensions.items())
    indicator(
        id=OVERALL, theme=THEME, title_es="Índice compuesto de prosperidad urbana",
        title_en="Composite urban prosperity index",
        formula=scoring + f"media ponderada de las dimensiones (pesos: {weights}); dimensión = media "
        "ponderada de sus indicadores: " + _describe(spec, list(spec.dimensions)) + missing
        + "; sensibilidad (observatory sensitivity, /indicators/cpi_overall/sensitivity): rangos de "
        "posición con pesos aleatorios (Dirichlet plano) y posición con agregación geométrica "
        f"(Π max(s_d, {GEOMETRIC_FLOOR:g})^w_d con los pesos w_d normalizados a suma 1, "
        f"puntuaciones bajo {GEOMETRIC_FLOOR:g} llevadas a {GEOMETRIC_FLOOR:g} en la escala 0–100)",
        unit="puntos (0–100)", direction="higher_is_better", inputs=(VALUES, "municipalities"),
        disclosure="derived", period_rule=PERIOD_RULE,
        references=REFERENCES,
    )(_overall_function(spec))  # fmt: skip


def _dimension_function(spec: CompositeSpec, key: str) -> ComputeFunction:
    alone = CompositeSpec({key: spec.dimensions[key]}, tuple(spec.members(key)))

    def compute(*, indicators: gpd.GeoDataFrame, municipalities: gpd.GeoDataFrame) -> pd.DataFrame:
        return _per_period(indicators, municipalities, spec, lambda scores: scores[key], alone)

    return compute


def _overall_function(spec: CompositeSpec) -> ComputeFunction:
    weights = dimension_weights(spec)

    def compute(*, indicators: gpd.GeoDataFrame, municipalities: gpd.GeoDataFrame) -> pd.DataFrame:
        return _per_period(indicators, municipalities, spec, lambda scores: overall_scores(scores, weights))

    return compute


SPEC = read_spec()
_register(SPEC)
