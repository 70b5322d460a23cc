"""The HTTP API: OGC API Features and Tiles, indicator metadata and the map page."""

from observatory.api.app import create_app

__all__ = ["create_app"]
