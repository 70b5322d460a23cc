"""Urban control on the tiny AMSS (tests/fixtures.py), every value computed by hand below.

West (0001) is x 0–2 km: zone Z1 residential (x < 1 km), Z2 commercial; East (0002) is industry.
Business days skip weekends and El Salvador's holidays with San Salvador's August feasts; the
submission day is not counted, the resolution day is.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from layers import get_layer
from observatory.indicators import compute_indicators
from observatory.indicators.urban_control import business_days, covered_by_permit
from observatory.sample import DEFAULT_SEED, amss_boundaries
from observatory.sample.complaints import COMPLAINTS_STREAM, NEAR_PERMIT_SHARE, complaints_frame
from observatory.settings import REFERENCE_DIR, Settings
from observatory.store import Store
from tests import fixtures
from tests.fixtures import X0, Y0
from zoning.compatibility import COMPATIBILITY_FILE, CompatibilityTableError, compatibility_table

PC, CL = "permiso_construccion", "calificacion_lugar"
# (id, kind, use, m², USD, submitted, resolved, x, y, status); business days in the comment.
PERMITS = [
    # West 2017: 1, 2 and 30 days — skewed: median 2, mean 11. W1: Friday to Monday, 1.
    ("W1", PC, "habitacional", 100, 1000, "2017-03-03", "2017-03-06", X0 + 200, Y0 + 200, "aprobado"),
    ("W2", PC, "comercio_servicios", None, 500, "2017-04-10", "2017-04-14", X0 + 500, Y0 + 500, "aprobado"),
    # ^ Mon→Good Friday (Holy Thursday and Good Friday are holidays): Tue, Wed = 2
    ("W3", PC, "industria", 300, None, "2017-06-01", "2017-07-13", X0 + 800, Y0 + 800, "aprobado"),  # 30
    # Withdrawn by the applicant: counted nowhere (else West 2017 would have 4 files, 1 of 200+ days).
    ("W5", PC, "habitacional", 999, 9999, "2017-01-09", "2017-10-31", X0 + 1500, Y0 + 1500, "desistido"),
    # Crosses the new year: 13 days (Dec 25 and Jan 1 are holidays), counted in 2018, its resolution.
    ("W6", PC, "bodega", 50, 800, "2017-12-20", "2018-01-10", X0 + 1500, Y0 + 500, "aprobado"),
    # East 2017: approved without floor area or investment (4 days), and a denied file (34 days).
    ("E1", PC, "industria", None, None, "2017-02-06", "2017-02-10", X0 + 3000, Y0 + 1000, "aprobado"),
    ("E2", PC, "habitacional", 80, 900, "2017-02-06", "2017-03-24", X0 + 4000, Y0 + 1000, "denegado"),
    # Rulings, West 2017: Aug 1→8 skips San Salvador's Aug 3 feast: 4 days; Sep 4→Oct 16: 29 (Sep 15).
    ("R1", CL, "habitacional", None, None, "2017-08-01", "2017-08-08", X0 + 300, Y0 + 1500, "aprobado"),
    ("R2", CL, "comercio_servicios", None, None, "2017-09-04", "2017-10-16", X0 + 300, Y0 + 1600, "aprobado"),
]  # fmt: skip
# (id, date, x, y): distances and lags to the nearest approved construction permit.
COMPLAINTS = [
    ("C1", "2017-03-03", X0 + 249, Y0 + 200),  # W1 at 49 m, submitted that very day: covered
    ("C2", "2017-06-01", X0 + 251, Y0 + 200),  # W1 at 51 m: not covered
    ("C5", "2017-04-09", X0 + 510, Y0 + 500),  # W2 at 10 m, submitted the day after: not covered
    ("C3", "2018-06-01", X0 + 800, Y0 + 810),  # W3 at 10 m, submitted 365 days before: covered
    ("C4", "2018-06-02", X0 + 800, Y0 + 790),  # W3 at 10 m, 366 days before: not covered
    ("C6", "2017-03-01", X0 + 4010, Y0 + 1000),  # only the denied E2 near: not covered
    ("C7", "2017-03-01", X0 + 3010, Y0 + 1000),  # E1 at 10 m, 23 days before: covered
]


def values(store: Store, indicator_id: str) -> dict[tuple[str, int], tuple[float, int]]:
    frame = store.read_layer(get_layer("indicators"))
    frame = frame[frame["indicator_id"] == indicator_id]
    return {
        (r.municipality_code, int(r.period)): (round(float(r.value), 6), int(r.n)) for r in frame.itertuples()
    }


def write_complaints(folder: Path) -> Path:
    path = folder / "denuncias.csv"
    pd.DataFrame(
        [(c, d, "construccion_sin_permiso", "recibida", x, y) for c, d, x, y in COMPLAINTS],
        columns=["correlativo", "fecha", "tipo", "estado", "x", "y"],
    ).to_csv(path, index=False)
    return path


@pytest.fixture
def urban(store: Store, settings: Settings, sources: dict[str, Path]) -> Store:
    folder = sources["municipalities"].parent
    fixtures.load(store, "municipalities", sources["municipalities"], settings=settings)
    fixtures.load(store, "zoning", sources["zoning"], settings=settings)
    fixtures.load(
        store, "permits", fixtures.write_permits(folder, PERMITS, name="tramites.csv"), settings=settings
    )
    utm = 'crs = "EPSG:32616"\nx = "x"\ny = "y"\n'
    fixtures.load(store, "complaints", write_complaints(folder), settings=settings, source=utm)
    compute_indicators(store, settings=settings)
    return store


def test_business_days_skip_weekends_and_holidays_counting_the_resolution_day() -> None:
    dates = pd.DataFrame(
        [
            ("2017-03-03", "2017-03-06"),  # Friday to Monday: the Monday only
            ("2017-03-06", "2017-03-06"),  # the same day: nothing
            ("2017-04-12", "2017-04-13"),  # resolved on Holy Thursday: that day does not count
            ("2017-04-10", "2017-04-14"),  # Tuesday and Wednesday
            ("2017-08-01", "2017-08-08"),  # Aug 3 is San Salvador's feast, Aug 4 is not
            ("2017-12-20", "2018-01-10"),
            ("2017-03-04", "2017-03-06"),  # submitted on a Saturday: Monday counts
            ("2017-03-03", None),
        ],
        columns=["submitted", "resolved"],
    ).apply(pd.to_datetime)
    days = business_days(dates["submitted"], dates["resolved"])
    assert days.iloc[:7].tolist() == [1, 0, 0, 2, 4, 13, 1]
    assert pd.isna(days.iloc[7])


def test_counts_and_totals_keep_missing_amounts_missing(urban: Store) -> None:
    # Approved only (E2 denied, W5 withdrawn); East had none in 2018: a true 0 with n 0.
    assert values(urban, "permits_count") == {
        ("0001", 2017): (3, 3), ("0002", 2017): (1, 1), ("0001", 2018): (1, 1), ("0002", 2018): (0, 0),
    }  # fmt: skip
    # West 2017 sums the known areas (W1 100 + W3 300, n 2; W2 has none); E1 has none: no value, not 0.
    assert values(urban, "authorised_floor_area") == {
        ("0001", 2017): (400, 2), ("0001", 2018): (50, 1), ("0002", 2018): (0, 0),
    }  # fmt: skip
    assert values(urban, "declared_investment") == {
        ("0001", 2017): (1_500, 2), ("0001", 2018): (800, 1), ("0002", 2018): (0, 0),
    }  # fmt: skip
    assert values(urban, "site_rulings_count") == {("0001", 2017): (2, 2), ("0002", 2017): (0, 0)}


def test_processing_times_per_procedure_mean_and_median(urban: Store) -> None:
    # West 2017: 1, 2, 30 (the withdrawn W5 left out). East 2017: E1 4 and the denied E2 34, a
    # decision too. W6 (13 days) belongs to 2018, the year it was resolved. Rulings apart: 4 and 29.
    assert values(urban, "median_processing_days") == {
        ("0001", 2017): (2, 3), ("0002", 2017): (19, 2), ("0001", 2018): (13, 1),
    }  # fmt: skip
    assert values(urban, "mean_processing_days") == {
        ("0001", 2017): (11, 3), ("0002", 2017): (19, 2), ("0001", 2018): (13, 1),
    }  # fmt: skip
    assert values(urban, "median_processing_days_rulings") == {("0001", 2017): (16.5, 2)}
    assert values(urban, "mean_processing_days_rulings") == {("0001", 2017): (16.5, 2)}


def test_small_groups_are_flagged(urban: Store) -> None:
    frame = urban.read_layer(get_layer("indicators")).set_index("value_id")
    assert frame.loc["median_processing_days:0001:2017", "flag"] == "small_n"
    assert frame.loc["permits_count:0002:2018", "flag"] == "small_n"


def test_within_the_legal_limit_counts_the_limit_itself(urban: Store, settings: Settings) -> None:
    # 30 business days is within a 30-day limit; the denied E2 (34) is not.
    assert values(urban, "resolved_within_legal_limit") == {
        ("0001", 2017): (100, 3), ("0002", 2017): (50, 2), ("0001", 2018): (100, 1),
    }  # fmt: skip
    assert values(urban, "resolved_within_legal_limit_rulings") == {("0001", 2017): (100, 2)}
    # Each procedure reads its own limit.
    shorter = settings.model_copy(
        update={"legal_limit_business_days": 2, "legal_limit_business_days_rulings": 28}
    )
    compute_indicators(
        urban, ["resolved_within_legal_limit", "resolved_within_legal_limit_rulings"], settings=shorter
    )
    assert values(urban, "resolved_within_legal_limit") == {
        ("0001", 2017): (round(200 / 3, 6), 3), ("0002", 2017): (0, 2), ("0001", 2018): (0, 1),
    }  # fmt: skip
    assert values(urban, "resolved_within_legal_limit_rulings") == {("0001", 2017): (50, 2)}


def test_use_shares_among_approved_files(urban: Store) -> None:
    # West 2017: W1 of W1-W3 (W5 withdrawn would make it 2 of 4); W6 is a warehouse; E2 was denied.
    assert values(urban, "housing_permits_share") == {
        ("0001", 2017): (round(100 / 3, 6), 3), ("0002", 2017): (0, 1), ("0001", 2018): (0, 1),
    }  # fmt: skip
    assert values(urban, "housing_rulings_share") == {("0001", 2017): (50, 2)}


def test_permits_compatible_with_the_zoning_plan(urban: Store) -> None:
    # In Z1 (residential): W1 housing compatible, W2 commerce conditional (counts as compatible), W3
    # industry incompatible. E1 industry in the industrial zone. W6's use is not in the table: left out.
    assert values(urban, "permits_compatible_share") == {
        ("0001", 2017): (round(200 / 3, 6), 3), ("0002", 2017): (100, 1),
    }  # fmt: skip


def test_complaints_without_a_permit_nearby(urban: Store, settings: Settings) -> None:
    # West 2017: C1 covered, C2 (51 m) and C5 (permit came later) not; West 2018: C3 (365 days)
    # covered, C4 (366) not; East: C6 near a denied permit only, C7 covered.
    assert values(urban, "complaints_without_permit_share") == {
        ("0001", 2017): (round(200 / 3, 6), 3), ("0001", 2018): (50, 2), ("0002", 2017): (50, 2),
    }  # fmt: skip
    wider = settings.model_copy(update={"complaint_permit_distance_m": 60.0, "complaint_permit_days": 366})
    compute_indicators(urban, ["complaints_without_permit_share"], settings=wider)
    assert values(urban, "complaints_without_permit_share") == {
        ("0001", 2017): (round(100 / 3, 6), 3), ("0001", 2018): (0, 2), ("0002", 2017): (50, 2),
    }  # fmt: skip


def test_the_compatibility_table_covers_every_use_and_class() -> None:
    table = compatibility_table()
    uses = {use for use, _ in table}
    assert uses == {"habitacional", "comercio_servicios", "industria", "equipamientos", "otros"}
    assert table[("habitacional", "habitacional")] == "compatible"
    assert table[("industria", "proteccion")] == "incompatible"


def test_a_malformed_compatibility_table_names_file_row_and_reason(tmp_path: Path) -> None:
    text = COMPATIBILITY_FILE.read_text(encoding="utf-8").replace(
        "industria,incompatible,", "industria,prohibido,", 1
    )
    bad = tmp_path / "compatibilidad.csv"
    bad.write_text(text, encoding="utf-8")
    with pytest.raises(
        CompatibilityTableError,
        match=r"compatibilidad\.csv: row 4 \(industria\), column habitacional: 'prohibido'",
    ):
        compatibility_table(bad)


def test_the_sample_has_the_reports_64_complaints_a_year_some_beside_a_recent_permit() -> None:
    """64 in the report's year (2016), 2017 and 2018 scaled by 1.06 and 0.93 (data/sample)."""
    permits = pd.read_csv(REFERENCE_DIR.parent / "sample" / "permisos_opamss.csv")
    complaints = complaints_frame(
        permits, amss_boundaries(), np.random.default_rng([DEFAULT_SEED, COMPLAINTS_STREAM])
    )
    per_year = {2016: 64, 2017: 68, 2018: 60}
    years = pd.to_datetime(complaints["fecha_denuncia"]).dt.year
    assert years.value_counts().to_dict() == per_year and complaints["correlativo"].is_unique
    assert complaints["municipio"].notna().all()
    points = gpd.GeoDataFrame(
        {"date": pd.to_datetime(complaints["fecha_denuncia"])},
        geometry=gpd.points_from_xy(complaints["longitud"], complaints["latitud"]),
        crs="EPSG:4326",
    )
    granted = gpd.GeoDataFrame(
        {
            "kind": permits["tramite"],
            "status": permits["estado"],
            "submitted": pd.to_datetime(permits["fecha_ingreso"]),
        },
        geometry=gpd.points_from_xy(permits["x"], permits["y"]),
        crs="EPSG:5460",
    )
    covered = covered_by_permit(points, granted, distance_m=50, days=365)
    assert covered.sum() == sum(round(count * NEAR_PERMIT_SHARE) for count in per_year.values())
