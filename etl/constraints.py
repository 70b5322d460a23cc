"""The catalogue's bounds on typed values (``[constraints]`` in layers/*.toml), checked row by row.

A value can parse and still be wrong: a negative investment, a permit from the year 9999 or
resolved before it was submitted, a text of megabytes. Each would reach the indicators (a median
of minus 525,690 days) or the tiles; here it is a reject naming the bound it breaks.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from etl.report import Report
from layers import Constraint, Layer

PREVIEW = 20
"""Characters of an overlong text quoted in its reason."""


def check_constraints(
    frame: pd.DataFrame, layer: Layer, report: Report, *, today: date | None = None
) -> pd.DataFrame:
    """``frame`` (typed by ``parse_values``) without the rows that break a constraint; each is
    rejected for the first it breaks, in the catalogue's order of properties."""
    today = today or date.today()
    reasons = pd.Series(None, index=frame.index, dtype=object)
    for column, kind in layer.properties.items():
        if column not in frame.columns:
            continue
        constraint = layer.constraint(column)
        problem = _breaches(frame[column], kind, constraint, today)
        other = constraint.minimum_field
        if other is not None and other in frame.columns:
            before = problem.isna() & frame[column].notna() & frame[other].notna()
            before &= (frame[column] < frame[other]).fillna(False).astype(bool)
            problem[before] = [f"is before {other} ({_text(v)})" for v in frame.loc[before, other]]
        new = reasons.isna() & problem.notna()
        reasons[new] = [
            f"{column} '{_text(value)}' {why}"
            for value, why in zip(frame.loc[new, column], problem[new], strict=True)
        ]
    failed = reasons.notna()
    report.reject(frame[failed], reasons[failed])
    return frame[~failed]


def _breaches(values: pd.Series, kind: str, constraint: Constraint, today: date) -> pd.Series:
    """Per row, the bound the value breaks (None where it breaks none, or is missing)."""
    problem = pd.Series(None, index=values.index, dtype=object)
    present = values.notna()
    if kind == "string":
        if constraint.max_length is not None:
            lengths = values.astype("string").str.len()  # vectorised: a million texts per column
            long = present & (lengths > constraint.max_length)
            problem[long] = lengths[long].map(
                lambda n: f"has {n:,} characters (at most {constraint.max_length:,})"
            )
        return problem
    if kind == "date":
        low = None if constraint.minimum is None else pd.Timestamp(constraint.minimum)
        high = None if constraint.maximum is None else pd.Timestamp(constraint.maximum)
        if constraint.years_ahead is not None:
            ahead = pd.Timestamp(today) + pd.DateOffset(years=constraint.years_ahead)
            if high is None or ahead < high:
                high = ahead
        if low is not None:
            problem[present & (values < low)] = f"is before {low.date()}"
        if high is not None:
            problem[present & (values > high)] = f"is after {high.date()}"
        return problem
    numbers = values.astype("float64")
    low, high = (None if b is None or isinstance(b, date) else float(b)
                 for b in (constraint.minimum, constraint.maximum))  # fmt: skip
    if low is not None:
        problem[present & (numbers < low)] = f"is below {_text(low)}"
    if constraint.exclusive_minimum is not None:
        bound = constraint.exclusive_minimum
        problem[present & (numbers <= bound)] = f"is not above {_text(bound)}"
    if high is not None:
        problem[present & (numbers > high)] = f"is above {_text(high)}"
    return problem


def _text(value: object) -> str:
    """A value as a reason quotes it: numbers plainly (0, 1250.5, -1e+308), dates as days, text
    cut to its first characters."""
    if isinstance(value, pd.Timestamp | date):
        return value.strftime("%Y-%m-%d")
    if isinstance(value, float | int | np.number):
        return f"{float(value):.15g}"
    text = str(value)
    return text if len(text) <= PREVIEW else text[:PREVIEW] + "…"
