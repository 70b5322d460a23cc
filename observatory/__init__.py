"""AMSS urban observatory: the Python API shared by the server, the CLI and the notebooks."""

__version__ = "0.1.0"
