"""The rejects report: every row that could not be loaded, with its source row and the reason."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd


class Rejects:
    """Collects rejected rows of one source file; written as CSV next to the load's run record."""

    def __init__(self, source: Path) -> None:
        self.source = source
        self.rows: list[dict[str, Any]] = []

    def add(self, frame: pd.DataFrame, reason: str | pd.Series) -> None:
        """Reject every row of ``frame`` (which carries the ``_row`` column) for ``reason``."""
        from etl.sources import ROW

        reasons = reason if isinstance(reason, pd.Series) else pd.Series(reason, index=frame.index)
        for index, row in frame.iterrows():
            values = {k: _plain(v) for k, v in row.items() if k != ROW and k != "geometry"}
            self.rows.append(
                {
                    "file": str(self.source),
                    "row": int(row[ROW]),
                    "reason": str(reasons[index]),
                    "values": json.dumps(values, ensure_ascii=False, default=str),
                }
            )

    def __len__(self) -> int:
        return len(self.rows)

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        columns = ["file", "row", "reason", "values"]
        pd.DataFrame(self.rows, columns=columns).sort_values("row", kind="stable").to_csv(path, index=False)


def _plain(value: Any) -> Any:
    if value is None or (isinstance(value, float) and value != value):
        return None
    return value.item() if hasattr(value, "item") else value
