"""Which permit uses the Esquema Director allows in which land-use class, kept as data.

``compatibility.csv`` beside this module has one row per permit use class (as OPAMSS's register
names them) and one column per land-use class of ``classes.py``; each cell says ``compatible``,
``conditional`` (allowed subject to conditions checked in the permit itself) or ``incompatible``.
Planners edit the table, not the code.
"""

from __future__ import annotations

import csv
from functools import cache
from pathlib import Path
from typing import Literal

from zoning.classes import LAND_USE_CLASSES

Compatibility = Literal["compatible", "conditional", "incompatible"]
LEVELS: dict[str, Compatibility] = {"compatible": "compatible", "conditional": "conditional",
                                    "incompatible": "incompatible"}  # fmt: skip
COMPATIBILITY_FILE = Path(__file__).with_name("compatibility.csv")


class CompatibilityTableError(ValueError):
    """The compatibility table is malformed; the message names the file, the row and the reason."""


@cache
def compatibility_table(path: Path = COMPATIBILITY_FILE) -> dict[tuple[str, str], Compatibility]:
    """(permit use class, land-use class) -> compatibility, read once from ``path``."""
    with path.open(encoding="utf-8", newline="") as source:
        rows = list(csv.reader(source))
    if not rows or rows[0][:1] != ["uso"]:
        raise CompatibilityTableError(f"{path}: row 1 must start with the column 'uso'")
    header = rows[0][1:]
    if sorted(header) != sorted(LAND_USE_CLASSES):
        raise CompatibilityTableError(
            f"{path}: row 1 must name each land-use class once: {', '.join(LAND_USE_CLASSES)}"
        )
    table: dict[tuple[str, str], Compatibility] = {}
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != len(header) + 1:
            raise CompatibilityTableError(f"{path}: row {number} has {len(row)} cells, not {len(header) + 1}")
        use, cells = row[0].strip(), row[1:]
        for land_use, cell in zip(header, cells, strict=True):
            if cell.strip() not in LEVELS:
                raise CompatibilityTableError(
                    f"{path}: row {number} ({use}), column {land_use}: {cell!r} is not one of "
                    + ", ".join(LEVELS)
                )
            table[(use, land_use)] = LEVELS[cell.strip()]
    return table
