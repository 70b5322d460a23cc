"""Codes from names, and properties from other tables: the joins a table without geometry needs.

Names are compared after case-folding, accent stripping and whitespace collapsing, so "SOYAPANGO",
"Soyapango " and "soyapango" are one name; everything else (official alternatives such as "Nueva
San Salvador" for Santa Tecla) comes from the names table, never from a guess.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pandas as pd

from etl.manifest import JoinSpec, NamesSpec
from etl.report import Report
from observatory.errors import LoadError


def normalise_name(name: str) -> str:
    decomposed = unicodedata.normalize("NFKD", name.casefold())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(plain.split())


def names_table(path: Path) -> dict[str, str]:
    """Normalised name -> code; a name listed under two codes is an error in the table."""
    table = _read_table(path)
    for column in ("code", "name"):
        if column not in table.columns:
            raise LoadError(f"{path}: a names table needs the columns code and name")
    found: dict[str, str] = {}
    for row, (code, name) in enumerate(zip(table["code"], table["name"], strict=True), 1):
        key = normalise_name(name)
        if found.get(key, code) != code:
            raise LoadError(f"{path}: row {row}: name {name!r} is listed for codes {found[key]} and {code}")
        found[key] = code
    return found


def codes_from_names(frame: pd.DataFrame, names: pd.Series, spec: NamesSpec, report: Report) -> pd.DataFrame:
    """``frame`` with ``spec.field`` set to the code of each row's name; unknown names rejected."""
    table = names_table(spec.table)
    codes = names.fillna("").map(lambda name: table.get(normalise_name(str(name))))
    unknown = codes.isna()
    report.reject(
        frame[unknown],
        names[unknown].map(lambda name: f"name {name!r} matches no municipality in {spec.table.name}"),
    )
    kept = frame[~unknown].copy()
    kept[spec.field] = codes[~unknown]
    return kept


def join_table(frame: pd.DataFrame, spec: JoinSpec, report: Report) -> pd.DataFrame:
    """``frame`` with the joined table's columns; rows whose key the table lacks are rejected."""
    table = _read_table(spec.path)
    missing = [column for column in (spec.key, *spec.fields.values()) if column not in table.columns]
    if missing:
        raise LoadError(
            f"{spec.path}: missing column(s) {', '.join(map(repr, missing))}; "
            f"the table has: {', '.join(table.columns)}"
        )
    if table[spec.key].duplicated().any():
        repeated = table.loc[table[spec.key].duplicated(), spec.key].iloc[0]
        raise LoadError(f"{spec.path}: key {spec.key} {repeated!r} appears more than once")
    lookup = table.set_index(spec.key)
    keys = frame[spec.on]
    unmatched = ~keys.isin(lookup.index)
    report.reject(
        frame[unmatched],
        keys[unmatched].map(lambda key: f"{spec.on} {key!r} not found in {spec.path.name} ({spec.key})"),
    )
    kept = frame[~unmatched].copy()
    for ours, theirs in spec.fields.items():
        kept[ours] = kept[spec.on].map(lookup[theirs])
    return kept


def _read_table(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise LoadError(f"{path}: table not found")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise LoadError(f"{path}: cannot be read as a UTF-8 CSV table ({error})") from None
    return table.apply(lambda column: column.str.strip())
