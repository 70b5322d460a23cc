"""Choropleth classes and labels of the map page."""

from __future__ import annotations

import pandas as pd
import pytest

from observatory.map import NO_DATA, PALETTE, class_breaks, colour, format_value


def test_quantile_breaks_and_colours() -> None:
    breaks = class_breaks(pd.Series([1.0, 2.0, 3.0, 4.0, 5.0]))
    assert breaks == pytest.approx([1.8, 2.6, 3.4, 4.2, 5.0])
    assert [colour(v, breaks) for v in (1, 2, 3, 4, 5)] == PALETTE
    assert colour(None, breaks) == NO_DATA
    assert colour(float("nan"), breaks) == NO_DATA


def test_ties_collapse_into_fewer_classes() -> None:
    breaks = class_breaks(pd.Series([7.0, 7.0, 7.0]))
    assert breaks == [7.0]
    assert colour(7.0, breaks) == PALETTE[0]
    assert class_breaks(pd.Series([], dtype=float)) == []


def test_values_read_naturally() -> None:
    assert format_value(9.0, "permisos") == "9 permisos"
    assert format_value(2500.4, "hab/km²") == "2,500 hab/km²"
    assert format_value(0.3333, "índice 0–1") == "0.33 índice 0–1"
    assert format_value(None, "%") == "sin datos"
