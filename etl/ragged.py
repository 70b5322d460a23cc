"""CSV rows with the wrong number of fields: found before they are read, never silently shifted.

pandas fills a short row with empty values and, when the first data row has one field too many,
takes its first column for an index, shifting every value of the file. So each CSV is first
scanned with Arrow (a fraction of a second for a million rows), which counts every row's fields;
a file whose rows all match its header is read by pandas as before, and any other is read with the
``csv`` module, which names every ragged row and its field count. A file whose last row stops
short and has no final line break was cut in the middle of that row: it is refused.
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv

from etl.manifest import SourceSpec
from observatory.errors import LoadError


def is_rectangular(source: SourceSpec, *, encoding: str, delimiter: str) -> bool:
    """True when every row has as many fields as the header (False also when Arrow cannot tell)."""
    ragged = False

    def note(row: object) -> str:
        nonlocal ragged
        ragged = True
        return "skip"

    try:
        reader = pa_csv.open_csv(
            source.path,
            read_options=pa_csv.ReadOptions(
                skip_rows=source.header_row - 1, encoding=encoding.replace("utf-8-sig", "utf8"),
                block_size=8 << 20,
            ),
            parse_options=pa_csv.ParseOptions(
                delimiter=delimiter, newlines_in_values=True, invalid_row_handler=note
            ),
            convert_options=pa_csv.ConvertOptions(column_types={}, include_columns=[]),
        )  # fmt: skip
        for _ in reader:
            if ragged:
                return False
    except (pa.ArrowException, ValueError, LookupError, OSError, UnicodeError):
        return False
    return not ragged


def ragged_chunks(
    source: SourceSpec, chunk_rows: int, *, encoding: str, delimiter: str
) -> Iterator[tuple[pd.DataFrame, pd.Series]]:
    """Chunks indexed by 1-based data row, each with the reasons of its ragged rows (kept in the
    chunk, cut or padded to the header, so that the report shows them as read)."""
    path = source.path
    with open(path, encoding=encoding, newline="") as handle:
        for _ in range(source.header_row - 1):
            handle.readline()
        records = (record for record in csv.reader(handle, delimiter=delimiter) if record)
        header = next(records, None)
        if header is None:
            raise LoadError(f"{path}: the file is empty (no header row)")
        columns = _unique(header)
        width = len(columns)
        first, pending = 1, next(records, None)
        while pending is not None:
            batch = [pending, *itertools.islice(records, chunk_rows - 1)]
            pending = next(records, None)
            index = pd.RangeIndex(first, first + len(batch))
            counts = [len(record) for record in batch]
            rows = [(record + [""] * width)[:width] for record in batch]
            frame = pd.DataFrame(rows, columns=columns, index=index, dtype=object)
            frame = frame.where(~frame.isin(source.missing_values), None)
            reasons = pd.Series(
                {row: f"row has {count} fields, the header has {width}"
                 for row, count in zip(index, counts, strict=True) if count != width},
                dtype=object,
            )  # fmt: skip
            first += len(batch)
            if pending is None and counts[-1] < width and not _ends_with_newline(path):
                raise LoadError(
                    f"{path}: the last row (row {first - 1}) has {counts[-1]} of {width} fields and the "
                    "file does not end with a line break: it was cut short; nothing was loaded"
                )
            yield frame, reasons


def header_columns(source: SourceSpec, *, encoding: str, delimiter: str) -> list[str]:
    """The names of the columns, from the header row."""
    with open(source.path, encoding=encoding, newline="") as handle:
        for _ in range(source.header_row - 1):
            handle.readline()
        header = next((record for record in csv.reader(handle, delimiter=delimiter) if record), None)
    if header is None:
        raise LoadError(f"{source.path}: the file is empty (no header row)")
    return _unique(header)


def _unique(header: list[str]) -> list[str]:
    """Column names as pandas makes them: blanks named, repeats numbered (``a``, ``a.1``)."""
    seen: dict[str, int] = {}
    columns = []
    for position, name in enumerate(header):
        name = name or f"Unnamed: {position}"
        if name in seen:
            seen[name] += 1
            name = f"{name}.{seen[name]}"
        seen.setdefault(name, 0)
        columns.append(name)
    return columns


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as handle:
        handle.seek(0, 2)
        if handle.tell() == 0:
            return False
        handle.seek(-1, 2)
        return handle.read(1) in (b"\n", b"\r")
