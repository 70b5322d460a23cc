"""The run report: every rejected and every repaired row, with its source row and the reason."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd

REJECTED, REPAIRED = "rejected", "repaired"
TEXT_LENGTH = 1_000
"""Characters of a source value the report keeps."""


class Report:
    """Rows of one source file that were rejected or repaired, with the values exactly as the
    source had them. Frames passed in are indexed by the 1-based source row (header excluded)."""

    def __init__(self, source: Path) -> None:
        self.source = source
        self.entries: list[tuple[int, str, str, str]] = []
        self.originals = pd.DataFrame()

    def reading(self, raw: pd.DataFrame) -> None:
        """The chunk being processed, as read: the values reported for its rows."""
        self.originals = raw

    def reject(self, frame: pd.DataFrame, reason: str | pd.Series) -> None:
        self._add(REJECTED, frame, reason)

    def repair(self, frame: pd.DataFrame, note: str | pd.Series) -> None:
        self._add(REPAIRED, frame, note)

    def _add(self, outcome: str, frame: pd.DataFrame, reason: str | pd.Series) -> None:
        if frame.empty:
            return
        reasons = reason if isinstance(reason, pd.Series) else pd.Series(reason, index=frame.index)
        known = frame.index.intersection(self.originals.index)
        values = {row: self._original(row) for row in known}
        for row in frame.index:
            self.entries.append((int(row), outcome, str(reasons[row]), values.get(row, "{}")))

    def count(self, outcome: str) -> int:
        return sum(1 for entry in self.entries if entry[1] == outcome)

    @property
    def rejected_rows(self) -> int:
        return len({entry[0] for entry in self.entries if entry[1] == REJECTED})

    def reasons(self) -> Counter[str]:
        """How many rows each kind of reason rejected (the quoted value stripped off)."""
        return Counter(_kind(entry[2]) for entry in self.entries if entry[1] == REJECTED)

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        rows = [
            {"file": str(self.source), "row": row, "outcome": outcome, "reason": reason, "values": values}
            for row, outcome, reason, values in sorted(self.entries, key=lambda entry: entry[0])
        ]
        pd.DataFrame(rows, columns=["file", "row", "outcome", "reason", "values"]).to_csv(path, index=False)

    def _original(self, row: int) -> str:
        values = {str(k): _plain(v) for k, v in self.originals.loc[row].items()}
        return json.dumps(values, ensure_ascii=False, default=str)


def _plain(value: Any) -> Any:
    if value is None or (isinstance(value, float) and value != value):
        return None
    if hasattr(value, "wkt"):  # outlines run to megabytes: the type and extent say which feature it is
        wkt = str(value.wkt)
        return (
            wkt
            if len(wkt) <= 200
            else f"{value.geom_type} with bounds {tuple(round(b, 6) for b in value.bounds)}"
        )
    if isinstance(value, str) and len(value) > TEXT_LENGTH:  # a whole file in one field
        return f"{value[:TEXT_LENGTH]}… ({len(value):,} characters)"
    return value.item() if hasattr(value, "item") else value


def _kind(reason: str) -> str:
    """A reason with its row's own values blanked, so that like reasons count together."""
    return re.sub(r"rows? \d+", "row …", re.sub(r"'[^']*'", "'…'", reason))
