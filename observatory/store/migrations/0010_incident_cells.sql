-- Disclosure control: the public form of the incidents, counted on H3 hexagons (layers/incident_cells.toml).

CREATE TABLE incident_cells (
    cell_id text PRIMARY KEY,
    h3_cell text NOT NULL,
    municipality_code text NOT NULL,
    year bigint NOT NULL,
    incidents bigint NOT NULL,
    geom geometry(MultiPolygon, 4326) NOT NULL
);
CREATE INDEX incident_cells_geom_idx ON incident_cells USING gist (geom);
CREATE INDEX incident_cells_year_idx ON incident_cells (year);
