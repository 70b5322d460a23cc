"""Esquema Director land-use classes and the crosswalk from the codes found in plan files.

The plan files OPAMSS publishes carry short codes (``HAB-AD``, ``COM``…); every analysis works on
the classes below, so a code missing from the crosswalk is a load error for that zone, not a guess.
"""

from __future__ import annotations

from typing import NamedTuple


class LandUseClass(NamedTuple):
    id: str
    title_es: str
    title_en: str
    colour: str
    """Conventional land-use map colour."""


LAND_USE_CLASSES: dict[str, LandUseClass] = {
    c.id: c
    for c in (
        LandUseClass("habitacional", "Habitacional", "Residential", "#f6e27f"),
        LandUseClass("comercio_servicios", "Comercio y servicios", "Commerce and services", "#e34a33"),
        LandUseClass("industria", "Industria", "Industry", "#9e6fb8"),
        LandUseClass("equipamiento", "Equipamientos", "Public facilities", "#3b8bc2"),
        LandUseClass("mixto", "Uso mixto", "Mixed use", "#f39c4a"),
        LandUseClass(
            "espacio_publico", "Espacio público y áreas verdes", "Public and green space", "#6cc070"
        ),
        LandUseClass("proteccion", "Protección ecológica", "Ecological protection", "#2e7d32"),
        LandUseClass("agricola", "Rural y agrícola", "Rural and agricultural", "#c5e1a5"),
    )
}

CROSSWALK: dict[str, tuple[str, str | None]] = {
    "HAB-AD": ("habitacional", "alta densidad"),
    "HAB-MD": ("habitacional", "media densidad"),
    "HAB-BD": ("habitacional", "baja densidad"),
    "COM": ("comercio_servicios", None),
    "IND": ("industria", None),
    "EQ": ("equipamiento", None),
    "MX": ("mixto", None),
    "EP": ("espacio_publico", None),
    "PE": ("proteccion", None),
    "AG": ("agricola", None),
}
"""Raw plan code -> (class id, subclass)."""


def classify(source_code: str) -> tuple[str, str | None]:
    """The (class, subclass) of a raw plan code; KeyError with the code when it is unknown."""
    key = source_code.strip().upper()
    if key not in CROSSWALK:
        raise KeyError(f"unknown land-use code {source_code!r}")
    return CROSSWALK[key]


URBANISED_CLASSES = frozenset({"habitacional", "comercio_servicios", "industria", "equipamiento", "mixto"})
"""Classes of built-up (urbanised) land: homes, commerce and services, industry, public facilities
and mixed use. Public and green space, ecological protection and rural land are open land."""
