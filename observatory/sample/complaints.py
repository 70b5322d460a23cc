"""Citizens' complaints of illegal construction as OPAMSS's register exports them: the 64 of the
accountability report in ``shared/seed``, with the inspector's GPS position in lon/lat and the
municipality named, not coded. About 40% are about works next to a construction permit submitted
up to 300 days before, within the report's period (works beyond what was authorised); the rest fall
where no permit was asked for."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer

from observatory.sample.geometry import centre_metric, random_points_in
from observatory.sample.permits import CONSTRUCTION, PERIOD_END, PERIOD_START
from observatory.settings import METRIC_CRS, PERMITS_SOURCE_CRS, STORAGE_CRS

COMPLAINTS_STREAM = 7007
"""The complaints generator's own random stream (with the seed)."""
REPORT_COMPLAINTS = 64
NEAR_PERMIT_SHARE = 0.4
NEAR_PERMIT_M = (5.0, 25.0)
"""How far from its permit a complaint about permitted works is recorded (GPS and lot size); less
than the permits' inset from the boundaries, so it stays in the same municipality."""
KINDS = {"obra_sin_permiso": 0.55, "ampliacion_no_autorizada": 0.25, "cambio_de_uso": 0.12,
         "invasion_derecho_de_via": 0.08}  # fmt: skip
STATUSES = {"resuelta": 0.5, "en_inspeccion": 0.3, "recibida": 0.2}


def complaints_frame(
    permits: pd.DataFrame, municipalities: gpd.GeoDataFrame, rng: np.random.Generator
) -> pd.DataFrame:
    """The complaints table; ``permits`` is :func:`permits_frame`'s table, ``municipalities``
    :func:`amss_boundaries`."""
    near = round(REPORT_COMPLAINTS * NEAR_PERMIT_SHARE)
    far = REPORT_COMPLAINTS - near
    granted = permits[(permits["tramite"] == CONSTRUCTION) & (permits["estado"] == "aprobado")]
    chosen = granted.iloc[rng.choice(len(granted), near, replace=False)]
    to_metric = Transformer.from_crs(PERMITS_SOURCE_CRS, METRIC_CRS, always_xy=True)
    px, py = to_metric.transform(chosen["x"].to_numpy(), chosen["y"].to_numpy())
    angle = rng.uniform(0, 2 * np.pi, near)
    offset = rng.uniform(*NEAR_PERMIT_M, near)
    submitted = pd.to_datetime(chosen["fecha_ingreso"]).to_numpy().astype("datetime64[D]")
    lag = np.minimum(rng.integers(1, 300, near), (PERIOD_END - submitted).astype(int))
    near_dates = submitted + lag.astype("timedelta64[D]")
    metric = municipalities.to_crs(METRIC_CRS)
    area = shapely.union_all(metric.geometry.values)
    far_xy = random_points_in(area, far, rng, toward=centre_metric())
    span = int((PERIOD_END - PERIOD_START).astype(int))
    far_dates = PERIOD_START + rng.integers(0, span, far).astype("timedelta64[D]")
    x = np.concatenate([px + offset * np.cos(angle), far_xy[:, 0]])
    y = np.concatenate([py + offset * np.sin(angle), far_xy[:, 1]])
    dates = np.concatenate([near_dates.astype("datetime64[D]"), far_dates.astype("datetime64[D]")])
    points = gpd.GeoSeries.from_xy(x, y, crs=METRIC_CRS)
    named = gpd.sjoin(
        gpd.GeoDataFrame(geometry=points), metric[["name", metric.geometry.name]], predicate="within"
    )
    frame = pd.DataFrame(
        {
            "fecha_denuncia": pd.to_datetime(dates),
            "tipo_denuncia": rng.choice(list(KINDS), REPORT_COMPLAINTS, p=list(KINDS.values())),
            "estado": rng.choice(list(STATUSES), REPORT_COMPLAINTS, p=list(STATUSES.values())),
            "municipio": named["name"].groupby(level=0).first().reindex(range(REPORT_COMPLAINTS)).to_numpy(),
        }
    )
    lon, lat = Transformer.from_crs(METRIC_CRS, STORAGE_CRS, always_xy=True).transform(x, y)
    frame["longitud"], frame["latitud"] = np.round(lon, 6), np.round(lat, 6)
    frame = frame.sort_values("fecha_denuncia", kind="stable").reset_index(drop=True)
    year = frame["fecha_denuncia"].dt.year.astype(str)
    frame.insert(
        0, "correlativo", "DEN-" + year + "-" + pd.Series(range(1, len(frame) + 1)).astype(str).str.zfill(3)
    )
    frame["fecha_denuncia"] = frame["fecha_denuncia"].dt.strftime("%Y-%m-%d")
    return frame
