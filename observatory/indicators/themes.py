"""The observatory's themes, in the order of the office's report, with their titles.

The report's interactive tool lists 13 themes; density and urban control are the office's own
instruments (the land-use plan and the permits) and the composite index sums the others up. The map,
the feeds and the Python API all group indicators by these ids and show these titles.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Theme:
    id: str
    title_es: str
    title_en: str

    def title(self) -> dict[str, str]:
        return {"es": self.title_es, "en": self.title_en}


THEMES: dict[str, Theme] = {
    theme.id: theme
    for theme in (
        Theme("services", "Servicios y espacio público", "Services and public space"),
        Theme("risk", "Seguridad territorial", "Territorial safety (hazards)"),
        Theme("mobility", "Movilidad", "Mobility"),
        Theme("labour", "Ocupación laboral", "Employment"),
        Theme("land_rent", "Renta del suelo urbano", "Urban land rent"),
        Theme("demography", "Demografía", "Demography"),
        Theme("violence", "Violencia", "Violence"),
        Theme("education", "Educación", "Education"),
        Theme("quality_of_life", "Calidad de vida", "Quality of life"),
        Theme("infrastructure", "Infraestructura", "Infrastructure"),
        Theme("productivity", "Productividad", "Productivity"),
        Theme("equity", "Equidad e inclusión social", "Equity and social inclusion"),
        Theme("environment", "Calidad ambiental", "Environmental quality"),
        Theme("density", "Densidad y ocupación del suelo", "Density and land occupation"),
        Theme("urban_control", "Control urbano", "Urban development control"),
        Theme("composite", "Índice compuesto de prosperidad", "Composite prosperity index"),
    )
}
