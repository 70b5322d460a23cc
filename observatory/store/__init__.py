"""Store backends: the embedded GeoPackage (default) and PostGIS, chosen by the database URL."""

from __future__ import annotations

from observatory.settings import Settings, get_settings
from observatory.store.base import AccessEntry, FeatureQuery, LayerVersion, LoadRun, Record, Store, conform

__all__ = [
    "AccessEntry",
    "FeatureQuery",
    "LayerVersion",
    "LoadRun",
    "Record",
    "Store",
    "conform",
    "open_store",
]


def open_store(settings: Settings | None = None) -> Store:
    """The store the settings select: PostGIS for a ``postgresql://`` URL, else the GeoPackage."""
    settings = settings or get_settings()
    url = settings.database_url
    if url:
        if not url.startswith(("postgresql://", "postgresql+psycopg://", "postgres://")):
            raise ValueError("OBSERVATORY_DATABASE_URL must be a postgresql:// URL")
        from observatory.store.postgis import PostGISStore

        return PostGISStore(
            url,
            schema=settings.db_schema,
            connect_timeout=settings.db_connect_timeout,
            statement_timeout=settings.db_statement_timeout,
        )
    from observatory.store.geopackage import GeoPackageStore

    return GeoPackageStore(settings.geopackage_path)
