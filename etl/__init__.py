"""Load jobs: source files described by manifests -> checked rows in the store, with a report."""

from etl.load import LoadResult, load_layer, load_source
from etl.manifest import Manifest, default_manifest, read_manifest

__all__ = ["LoadResult", "Manifest", "default_manifest", "load_layer", "load_source", "read_manifest"]
