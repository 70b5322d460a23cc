"""The rejects report: every row that could not be loaded, with its source row and the reason."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

ROW = "_row"
"""Column with each feature's 1-based position in its source file (header excluded)."""


class Rejects:
    """Rejected rows of one source file, reported with the values exactly as the source had them."""

    def __init__(self, source: Path) -> None:
        self.source = source
        self.originals = pd.DataFrame()
        self.reasons: list[tuple[int, str]] = []

    def keep_originals(self, frame: pd.DataFrame) -> None:
        """Remember the source rows as read (geometries as WKT) to report them unchanged."""
        self.originals = frame.set_index(ROW)

    def add(self, frame: pd.DataFrame, reason: str | pd.Series) -> None:
        """Reject every row of ``frame`` (which carries the ``_row`` column) for ``reason``."""
        reasons = reason if isinstance(reason, pd.Series) else pd.Series(reason, index=frame.index)
        for index, row in zip(frame.index, frame[ROW], strict=True):
            self.reasons.append((int(row), str(reasons[index])))

    def __len__(self) -> int:
        return len(self.reasons)

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        rows = [
            {"file": str(self.source), "row": row, "reason": reason, "values": self._original(row)}
            for row, reason in sorted(self.reasons, key=lambda item: item[0])
        ]
        pd.DataFrame(rows, columns=["file", "row", "reason", "values"]).to_csv(path, index=False)

    def _original(self, row: int) -> str:
        if row not in self.originals.index:
            return "{}"
        values = {str(k): _plain(v) for k, v in self.originals.loc[row].items()}
        return json.dumps(values, ensure_ascii=False, default=str)


def _plain(value: Any) -> Any:
    if value is None or (isinstance(value, float) and value != value):
        return None
    if hasattr(value, "wkt"):
        return value.wkt
    return value.item() if hasattr(value, "item") else value
