-- Themes II: citizens' complaints of illegal construction (urban control).

CREATE TABLE complaints (
    complaint_id text PRIMARY KEY,
    date date NOT NULL,
    kind text,
    status text,
    municipality_code text,
    geom geometry(Point, 4326) NOT NULL
);
CREATE INDEX complaints_geom_idx ON complaints USING gist (geom);
CREATE INDEX complaints_date_idx ON complaints (date);
CREATE INDEX complaints_municipality_code_idx ON complaints (municipality_code);
