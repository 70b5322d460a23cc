-- Themes II, violence: incident points (police and ACLED-style exports).

CREATE TABLE incidents (
    incident_id text PRIMARY KEY,
    date date NOT NULL,
    type text NOT NULL,
    fatalities bigint NOT NULL,
    source text,
    municipality_code text,
    geom geometry(Point, 4326) NOT NULL
);
CREATE INDEX incidents_geom_idx ON incidents USING gist (geom);
CREATE INDEX incidents_date_idx ON incidents (date);
CREATE INDEX incidents_municipality_code_idx ON incidents (municipality_code);
