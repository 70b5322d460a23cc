"""Load jobs: source files -> checked, reprojected rows in the store, with a rejects report."""

from etl.load import LoadResult, load_layer

__all__ = ["LoadResult", "load_layer"]
