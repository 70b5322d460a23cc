"""From source columns to typed catalogue properties, as the manifest declares.

Every step works on whole columns (a million rows take seconds) and sends the rows it cannot
accept to the report with a reason naming the property and the value.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from etl.lookups import codes_from_names, join_table
from etl.manifest import FieldSpec, Manifest
from etl.report import Report
from layers import Layer
from observatory.errors import LoadError

INT64_END = 2**63
"""The first whole number past int64 (a float column holds 2**63 - 1 as 2**63 already)."""
PLAUSIBLE_DATES = (pd.Timestamp("1900-01-01"), pd.Timestamp("2100-12-31"))
QUOTED_LENGTH = 40


def check_columns(manifest: Manifest, columns: list[str]) -> None:
    """Every source column the manifest names must exist: all missing ones are listed at once."""
    lowered = {column.lower() for column in columns}
    wanted = [spec.source for spec in manifest.field_specs().values() if spec.source and not spec.optional]
    wanted += [rule.column for rule in manifest.source.skip]
    if manifest.names is not None:
        wanted.append(manifest.names.column)
    missing = [column for column in dict.fromkeys(wanted) if column.lower() not in lowered]
    if missing:
        raise LoadError(
            f"{manifest.source.path}: missing column(s) {', '.join(map(repr, missing))}; "
            f"the file has: {', '.join(columns)}"
        )


def map_fields(raw: pd.DataFrame, manifest: Manifest, layer: Layer, report: Report) -> pd.DataFrame:
    """The chunk in the layer's properties, as text still (plus ``geometry`` when it has one)."""
    raw = _skip_rows(raw, manifest, report)
    lowered = {str(column).lower(): column for column in raw.columns}
    frame = pd.DataFrame(index=raw.index)
    for name, spec in manifest.field_specs().items():
        if spec.value is not None:
            frame[name] = str(spec.value)
        elif spec.source is not None and spec.source.lower() in lowered:
            frame[name] = _text(raw[lowered[spec.source.lower()]])
        else:
            frame[name] = pd.Series(pd.NA, index=raw.index, dtype="string")
    if "geometry" in raw.columns:
        frame["geometry"] = raw["geometry"]
    frame = _extract_and_map_values(frame, manifest, report)
    if manifest.names is not None:
        frame = codes_from_names(frame, raw.loc[frame.index, lowered[manifest.names.column.lower()]],
                                 manifest.names, report)  # fmt: skip
    for join in manifest.joins:
        frame = join_table(frame, join, report)
    if manifest.filter is not None:
        column = manifest.filter.field
        outside = ~frame[column].isin(manifest.filter.values)
        report.reject(
            frame[outside], frame.loc[outside, column].map(lambda v: f"{column} {v!r} not in the filter")
        )
        frame = frame[~outside]
    return frame


def _text(values: pd.Series) -> pd.Series:
    text = values.astype("string").str.strip()
    return text.where(text != "")


def _skip_rows(raw: pd.DataFrame, manifest: Manifest, report: Report) -> pd.DataFrame:
    lowered = {str(column).lower(): column for column in raw.columns}
    for rule in manifest.source.skip:
        values = raw[lowered[rule.column.lower()]].astype("string").fillna("")
        matches = values.str.contains(rule.pattern, regex=True)
        report.reject(raw[matches], f"skipped by rule: {rule.column} matches {rule.pattern!r}")
        raw = raw[~matches]
    return raw


def _extract_and_map_values(frame: pd.DataFrame, manifest: Manifest, report: Report) -> pd.DataFrame:
    for name, spec in manifest.field_specs().items():
        if spec.extract is not None:
            extracted = frame[name].str.extract(spec.extract, expand=False)
            frame = _replace(frame, name, extracted, f"does not match {spec.extract!r}", report)
        if spec.values is not None:
            mapped = frame[name].map(spec.values)
            frame = _replace(frame, name, mapped, "is not in the manifest's value mapping", report)
    return frame


def _replace(frame: pd.DataFrame, name: str, new: pd.Series, problem: str, report: Report) -> pd.DataFrame:
    """``name`` replaced by ``new``; rows with a value that has no replacement are rejected."""
    bad = frame[name].notna() & new.isna()
    report.reject(frame[bad], name + " " + frame.loc[bad, name].map(repr) + " " + problem)
    return frame[~bad].assign(**{name: new[~bad]})


def parse_values(frame: pd.DataFrame, manifest: Manifest, layer: Layer, report: Report) -> pd.DataFrame:
    """Each property converted to its catalogue type; a row is rejected for its first problem."""
    specs = manifest.field_specs()
    reasons = pd.Series(None, index=frame.index, dtype=object)
    parsed = frame.copy()
    for column, kind in layer.properties.items():
        if column not in frame.columns:
            parsed[column] = None
            if column in layer.required and column not in layer.id_from and column != layer.id:
                reasons[reasons.isna()] = f"missing value for {column}"
            continue
        text = frame[column]
        present = text.notna()
        values, problem = _parse(text, kind, specs.get(column, FieldSpec()))
        unexplained = reasons.isna()
        if column in layer.required:
            reasons[unexplained & ~present] = f"missing value for {column}"
        wrong = unexplained & present & problem.notna()
        reasons[wrong] = column + " " + text[wrong].map(_quoted) + " " + problem[wrong]
        parsed[column] = values
    failed = reasons.notna()
    report.reject(frame[failed], reasons[failed])
    parsed = parsed[~failed]
    if layer.id_from:  # (an empty chunk would make agg return a frame, not a column)
        parts = parsed[layer.id_from].astype(str)
        parsed[layer.id] = parts.agg(":".join, axis=1) if len(parts) else pd.Series(dtype=object)
    return parsed


def _quoted(text: str) -> str:
    """The text as a reason quotes it; a long one cut (a whole file may sit in one field)."""
    return repr(text if len(text) <= QUOTED_LENGTH else text[:QUOTED_LENGTH] + "…")


def _parse(text: pd.Series, kind: str, spec: FieldSpec) -> tuple[pd.Series, pd.Series]:
    """Typed values and, per row, the problem with its text (None where it parsed)."""
    none = pd.Series(None, index=text.index, dtype=object)
    if kind in ("integer", "number"):
        return _number(text, integer=kind == "integer", spec=spec)
    if kind == "date":
        return _date(text, spec)
    if text.str.contains("\x00", regex=False).fillna(False).any():
        nul = text.str.contains("\x00", regex=False).fillna(False)
        return text.astype(object).where(text.notna(), None), none.mask(nul, "contains a NUL character")
    return text.astype(object).where(text.notna(), None), none


def _number(text: pd.Series, *, integer: bool, spec: FieldSpec) -> tuple[pd.Series, pd.Series]:
    cleaned = text
    if not spec.bare_number:  # "$ 1,250.50", "12 %", "USD 300": what surrounds the number goes
        leading = re.escape("+-" + spec.decimal_char)
        cleaned = cleaned.str.replace(rf"^[^\d{leading}]+|(?<=\d)\D+$", "", regex=True)
    if spec.group_char:  # only between groups of three digits: "1.250,50" is not 1.2505
        cleaned = cleaned.mask(_misgrouped(cleaned, spec)).str.replace(spec.group_char, "", regex=False)
    if spec.decimal_char != ".":  # a "." that is not the group character is no decimal point here
        cleaned = cleaned.mask(cleaned.str.contains(".", regex=False).fillna(False))
        cleaned = cleaned.str.replace(spec.decimal_char, ".", regex=False)
    values = pd.to_numeric(cleaned, errors="coerce")
    problem = pd.Series(None, index=text.index, dtype=object)
    problem[values.isna()] = "is not a number"
    problem[values.notna() & ~np.isfinite(values.astype(float))] = "is not a finite number"
    if integer:
        finite = values.where(np.isfinite(values.astype(float)))
        outside = finite.notna() & ((finite >= INT64_END) | (finite < -INT64_END))
        problem[outside] = "is out of range for a whole number"
        problem[finite.notna() & ~outside & (finite % 1 != 0)] = "is not a whole number"
    values = values.where(problem.isna())  # whole numbers as integers: ids read "2007", not "2007.0"
    return values.astype("Int64") if integer else values, problem


def _misgrouped(text: pd.Series, spec: FieldSpec) -> pd.Series:
    """Numbers with a group character anywhere but between groups of three digits."""
    group, decimal = re.escape(spec.group_char), re.escape(spec.decimal_char)
    grouped = rf"[+-]?\d{{1,3}}(?:{group}\d{{3}})+(?:{decimal}\d*)?(?:[eE][+-]?\d+)?"
    return (text.str.contains(group) & ~text.str.fullmatch(grouped)).fillna(False).astype(bool)


def _date(text: pd.Series, spec: FieldSpec) -> tuple[pd.Series, pd.Series]:
    form = spec.format or "iso"
    if form in ("epoch_ms", "epoch_s"):
        numbers = pd.to_numeric(text, errors="coerce")
        within = numbers.abs() < 1e14 if form == "epoch_ms" else numbers.abs() < 1e11
        values = pd.to_datetime(numbers.where(within), unit=form.removeprefix("epoch_"), errors="coerce")
        if spec.timezone is not None:  # the instant, as a date where the records were kept
            values = values.dt.tz_localize("UTC").dt.tz_convert(spec.timezone).dt.tz_localize(None)
        expected = f"is not a date ({'milliseconds' if form == 'epoch_ms' else 'seconds'} since 1970)"
    else:
        values = _local_datetimes(text, "ISO8601" if form == "iso" else form)
        expected = "is not a date (YYYY-MM-DD)" if form == "iso" else f"is not a date ({form})"
    problem = pd.Series(None, index=text.index, dtype=object)
    problem[values.isna()] = expected
    implausible = values.notna() & ((values < PLAUSIBLE_DATES[0]) | (values > PLAUSIBLE_DATES[1]))
    problem[implausible] = "is outside 1900–2100"
    return values.where(problem.isna()).dt.normalize(), problem


def _local_datetimes(text: pd.Series, form: str) -> pd.Series:
    """Date-times at their local wall time: a UTC offset is dropped, even one that differs by row."""
    try:
        values = pd.to_datetime(text, errors="coerce", format=form)
    except ValueError:  # offsets that differ from row to row ("Z", "-06:00") cannot share a column
        values = pd.to_datetime(text.map(lambda one: _local_datetime(one, form), na_action="ignore"))
    return values.dt.tz_localize(None) if values.dt.tz is not None else values


def _local_datetime(text: str, form: str) -> pd.Timestamp:
    stamp = pd.to_datetime(text, errors="coerce", format=form)
    return stamp.tz_localize(None) if stamp is not pd.NaT and stamp.tzinfo is not None else stamp
