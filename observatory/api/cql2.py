"""CQL2 filters (OGC API - Features Part 3): text and JSON parsed by pygeofilter, checked against
the layer's catalogue and turned into a store-neutral condition.

The condition is a sequence of SQL keywords, catalogue columns and values; each store renders the
columns as quoted identifiers and the values as bound parameters, so nothing a client writes is
ever formatted into SQL. Every property is checked against the catalogue and every comparison
against the property's type, so a filter either runs or is a 400 naming the problem.
"""

from __future__ import annotations

import json
import math
import os
from datetime import date, datetime
from typing import Any

import lark
import shapely
from pygeofilter import ast, values
from pygeofilter.parsers.cql2_json import parse as parse_json
from pygeofilter.parsers.cql2_text import parser as cql2_text

from layers import Layer
from observatory.errors import InvalidParameter
from observatory.store.base import Column, Condition, Spatial, Value

TEXT, JSON = "cql2-text", "cql2-json"
LEGACY_TEXT = "cql-text"
"""The draft's name for CQL text, which GDAL before 3.8 sends: read as CQL2 text."""
GEOMETRY_NAMES = ("geom", "geometry")
"""Names a filter may give the layer's geometry (``geom`` is the queryable's name)."""
INT64 = (-(2**63), 2**63 - 1)

# pygeofilter 0.4's grammar gives AND and OR the same precedence (``a OR b AND c`` became
# ``(a OR b) AND c``) and takes only a predicate after NOT: CQL2 binds AND tighter, and NOT
# applies to any parenthesised condition. The same grammar with those two rules corrected.
_GRAMMAR_DIR = os.path.dirname(cql2_text.__file__)
with open(os.path.join(_GRAMMAR_DIR, "grammar.lark"), encoding="utf-8") as _file:
    _GRAMMAR = _file.read().replace(
        """?condition: condition_1
          | condition "AND"i condition_1                                 -> and_
          | condition "OR"i condition_1                                   -> or_

?condition_1: predicate
            | "NOT"i predicate                                               -> not_
            | "NOT"i "(" predicate ")"                                       -> not_
            | "(" condition ")\"""",
        """?condition: conjunction
          | condition "OR"i conjunction                                   -> or_

?conjunction: condition_1
            | conjunction "AND"i condition_1                               -> and_

?condition_1: predicate
            | "NOT"i condition_1                                             -> not_
            | "(" condition ")\"""",
    )
assert "conjunction" in _GRAMMAR, "pygeofilter's CQL2 grammar changed: review the precedence fix"
_TEXT_PARSER = lark.Lark(
    _GRAMMAR,
    parser="lalr",
    maybe_placeholders=False,
    transformer=cql2_text.CQLTransformer(),
    import_paths=[os.path.dirname(_GRAMMAR_DIR)],
)

_COMPARISONS = {
    ast.Equal: "=", ast.NotEqual: "<>", ast.LessThan: "<", ast.LessEqual: "<=",
    ast.GreaterThan: ">", ast.GreaterEqual: ">=",
    ast.TimeEquals: "=", ast.TimeBefore: "<", ast.TimeAfter: ">",
}  # fmt: skip
_ARITHMETIC = {ast.Add: "+", ast.Sub: "-", ast.Mul: "*", ast.Div: "/"}
_SPATIAL = {
    ast.GeometryIntersects: "intersects", ast.GeometryDisjoint: "disjoint",
    ast.GeometryContains: "contains", ast.GeometryWithin: "within", ast.GeometryTouches: "touches",
    ast.GeometryCrosses: "crosses", ast.GeometryOverlaps: "overlaps", ast.GeometryEquals: "equals",
}  # fmt: skip


def parse_filter(layer: Layer, text: str, lang: str = TEXT) -> Condition:
    """The condition a CQL2 filter (text or JSON) sets on the layer; 400 when it cannot run."""
    if "\x00" in text:
        raise InvalidParameter("filter: a NUL character is not allowed")
    try:
        if lang in (TEXT, LEGACY_TEXT):
            node = _TEXT_PARSER.parse(text)
        elif lang == JSON:
            node = parse_json(_standard_json(json.loads(text)))
        else:
            raise InvalidParameter(f"filter-lang={lang!r}: {TEXT} or {JSON} expected")
    except lark.exceptions.UnexpectedInput as error:
        column = getattr(error, "column", "?")
        raise InvalidParameter(f"filter: CQL2 text syntax error at character {column}") from None
    except (lark.exceptions.LarkError, ValueError, TypeError, KeyError, IndexError, AttributeError):
        raise InvalidParameter(f"filter: not a valid {lang} expression") from None
    return _Translator(layer).condition(node)


def _standard_json(node: Any) -> Any:
    """CQL2 JSON as the standard writes it, in the forms pygeofilter 0.4 reads: ``between`` with
    three arguments (it expects a pair), and a ``bbox`` literal (it swaps the corners)."""
    if isinstance(node, list):
        return [_standard_json(item) for item in node]
    if not isinstance(node, dict):
        return node
    if set(node) == {"bbox"} and isinstance(node["bbox"], list) and len(node["bbox"]) == 4:
        west, south, east, north = node["bbox"]
        return json.loads(shapely.to_geojson(shapely.box(west, south, east, north)))
    if node.get("op") == "between" and isinstance(node.get("args"), list) and len(node["args"]) == 3:
        subject, low, high = node["args"]
        return {"op": "between", "args": [_standard_json(subject), [low, high]]}
    return {key: _standard_json(value) for key, value in node.items()}


class _Translator:
    """Walks pygeofilter's tree; ``expression`` returns the parts and the value type."""

    def __init__(self, layer: Layer) -> None:
        self.layer = layer
        self.columns: set[str] = set()

    def condition(self, node: Any) -> Condition:
        parts = self._predicate(node)
        return Condition(tuple(parts), frozenset(self.columns))

    def _predicate(self, node: Any) -> list[Any]:
        if isinstance(node, ast.And | ast.Or):
            joiner = " AND " if isinstance(node, ast.And) else " OR "
            return ["(", *self._predicate(node.lhs), joiner, *self._predicate(node.rhs), ")"]
        if isinstance(node, ast.Not):
            return ["(NOT ", *self._predicate(node.sub_node), ")"]
        if isinstance(node, ast.Include):
            return ["(1 = 0)" if node.not_ else "(1 = 1)"]
        if type(node) in _COMPARISONS:
            return self._comparison(node.lhs, _COMPARISONS[type(node)], node.rhs)
        if isinstance(node, ast.Between):
            subject, kind = self._expression(node.lhs)
            low, high = self._typed(node.low, kind), self._typed(node.high, kind)
            keyword = " NOT BETWEEN " if node.not_ else " BETWEEN "
            return ["(", *subject, keyword, *low, " AND ", *high, ")"]
        if isinstance(node, ast.Like):
            subject, kind = self._expression(node.lhs)
            if kind != "string" or not isinstance(node.pattern, str) or node.nocase:
                raise InvalidParameter("filter: LIKE compares a text property with a text pattern")
            keyword = " NOT LIKE " if node.not_ else " LIKE "
            return ["(", *subject, keyword, Value(node.pattern), " ESCAPE '\\')"]
        if isinstance(node, ast.In):
            subject, kind = self._expression(node.lhs)
            options: list[Any] = []
            for index, option in enumerate(node.sub_nodes):
                options += [", "] * (index > 0) + self._typed(option, kind)
            return ["(", *subject, " NOT IN (" if node.not_ else " IN (", *options, "))"]
        if isinstance(node, ast.IsNull):
            subject, _ = self._expression(node.lhs)
            return ["(", *subject, " IS NOT NULL)" if node.not_ else " IS NULL)"]
        if type(node) in _SPATIAL:
            return [Spatial(_SPATIAL[type(node)], self._geometry(node.lhs, node.rhs))]
        if isinstance(node, ast.TimeDuring) and isinstance(node.rhs, values.Interval):
            return self._interval(node.lhs, node.rhs)
        name = type(node).__name__
        raise InvalidParameter(f"filter: {name} is not supported; see /conformance for the classes served")

    def _comparison(self, lhs: Any, operator: str, rhs: Any) -> list[Any]:
        if isinstance(lhs, ast.Node):
            left, kind = self._expression(lhs)
            right = self._typed(rhs, kind)
        else:
            right, kind = self._expression(rhs)
            left = self._typed(lhs, kind)
        return ["(", *left, f" {operator} ", *right, ")"]

    def _interval(self, subject: Any, interval: values.Interval) -> list[Any]:
        parts, kind = self._expression(subject)
        if kind != "date":
            raise InvalidParameter("filter: temporal operators apply to date properties")
        bounds: list[Any] = []
        if interval.start is not None:
            bounds += ["(", *parts, " >= ", *self._typed(interval.start, "date"), ")"]
        if interval.end is not None:
            bounds += [" AND "] * bool(bounds) + [
                "(",
                *parts,
                " <= ",
                *self._typed(interval.end, "date"),
                ")",
            ]
        return ["(", *bounds, ")"] if bounds else ["(1 = 1)"]

    def _expression(self, node: Any) -> tuple[list[Any], str]:
        """A property or arithmetic on numbers: its parts and type (string, number, date)."""
        if isinstance(node, ast.Attribute):
            name = node.name
            if name not in self.layer.properties:
                known = ", ".join(self.layer.properties)
                raise InvalidParameter(f"filter: unknown property {name!r}; queryables: {known}")
            self.columns.add(name)
            kind = self.layer.properties[name]
            return [Column(name)], "number" if kind == "integer" else kind
        if isinstance(node, ast.Arithmetic):
            left, right = self._number(node.lhs), self._number(node.rhs)
            operator = _ARITHMETIC[type(node)]
            if operator == "/":  # a division by zero is null, as in SQLite, rather than an error
                return ["(1.0 * ", *left, " / NULLIF(", *right, ", 0))"], "number"
            return ["(1.0 * ", *left, f" {operator} ", *right, ")"], "number"
        if isinstance(node, ast.Function):
            raise InvalidParameter(f"filter: function {node.name!r} is not supported")
        raise InvalidParameter("filter: a comparison needs a property on one side")

    def _number(self, node: Any) -> list[Any]:
        if isinstance(node, ast.Node):
            parts, kind = self._expression(node)
            if kind != "number":
                raise InvalidParameter("filter: arithmetic applies to numeric properties only")
            return parts
        return self._typed(node, "number")

    def _typed(self, node: Any, kind: str) -> list[Any]:
        """A literal (or another expression) that must be of ``kind``."""
        if isinstance(node, ast.Node):
            parts, other = self._expression(node)
            if other != kind:
                raise InvalidParameter(f"filter: cannot compare a {kind} with a {other}")
            return parts
        return [Value(_literal(node, kind))]

    def _geometry(self, lhs: Any, rhs: Any) -> bytes:
        """The literal geometry of a spatial predicate whose other side is the layer's geometry."""
        subject, literal = (lhs, rhs) if isinstance(lhs, ast.Attribute) else (rhs, lhs)
        if not isinstance(subject, ast.Attribute) or subject.name not in GEOMETRY_NAMES:
            raise InvalidParameter("filter: a spatial predicate compares geom with a literal geometry")
        if isinstance(literal, ast.Function) and literal.name == "bbox" and len(literal.arguments) == 4:
            try:
                west, south, east, north = (float(value) for value in literal.arguments)
            except (TypeError, ValueError):
                raise InvalidParameter("filter: BBOX takes four numbers") from None
            if not all(map(math.isfinite, (west, south, east, north))) or west > east or south > north:
                raise InvalidParameter("filter: BBOX takes four finite numbers, min ≤ max on each axis")
            return shapely.to_wkb(shapely.box(west, south, east, north))
        if not isinstance(literal, values.Geometry | values.Envelope):
            raise InvalidParameter("filter: a spatial predicate needs a literal geometry (WKT or GeoJSON)")
        try:
            geometry = shapely.geometry.shape(literal.__geo_interface__)
        except (ValueError, TypeError, AttributeError, shapely.errors.GEOSException):
            raise InvalidParameter("filter: invalid literal geometry") from None
        if geometry.is_empty or not shapely.is_valid(geometry):
            raise InvalidParameter(f"filter: invalid literal geometry ({shapely.is_valid_reason(geometry)})")
        return bytes(shapely.to_wkb(geometry))


def _literal(value: Any, kind: str) -> Any:
    """A literal checked against the property type it is compared with."""
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidParameter(f"filter: {value!r} compared with a number")
        if isinstance(value, int) and not INT64[0] <= value <= INT64[1]:
            raise InvalidParameter(f"filter: {value} is out of the 64-bit range")
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidParameter("filter: numbers must be finite")
        return value
    if kind == "date":
        if isinstance(value, datetime):
            raise InvalidParameter("filter: date properties compare with DATE('YYYY-MM-DD'), not TIMESTAMP")
        if isinstance(value, date):
            return value
        if isinstance(value, str):
            try:  # GDAL before 3.8 writes a date as 2017-01-01T
                return date.fromisoformat(value.removesuffix("T"))
            except ValueError:
                pass
        raise InvalidParameter(f"filter: {value!r} is not a date")
    if not isinstance(value, str):
        raise InvalidParameter(f"filter: {value!r} compared with a text property; quote it")
    return value


def text_search(layer: Layer, text: str) -> Condition:
    """``q`` (OGC API - Records' free-text search): any of the comma-separated terms found, case
    aside, in any text property. Terms are values (bound, their wildcards escaped)."""
    terms = [term.strip().lower() for term in text.split(",") if term.strip()]
    columns = [name for name, kind in layer.properties.items() if kind == "string"]
    if not terms or "\x00" in text:
        raise InvalidParameter("q: comma-separated words expected")
    tests: list[Any] = []
    for term in terms:
        pattern = "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        for column in columns:
            tests += [" OR "] * bool(tests) + [
                "(lower(",
                Column(column),
                ") LIKE ",
                Value(pattern),
                " ESCAPE '\\')",
            ]
    return Condition(("(", *tests, ")"), frozenset(columns))


def both(first: Condition | None, second: Condition | None) -> Condition | None:
    """The conjunction of two conditions (either may be absent)."""
    if first is None or second is None:
        return first or second
    return Condition(("(", *first.parts, " AND ", *second.parts, ")"), first.columns | second.columns)
