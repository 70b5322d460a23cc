-- Themes I: where people live, and the facilities and public spaces they reach.

CREATE TABLE population (
    cell_id text PRIMARY KEY,
    population double precision NOT NULL,
    period bigint,
    municipality_code text,
    geom geometry(MultiPolygon, 4326) NOT NULL
);
CREATE INDEX population_geom_idx ON population USING gist (geom);
CREATE INDEX population_municipality_code_idx ON population (municipality_code);

CREATE TABLE facilities (
    facility_id text PRIMARY KEY,
    type text NOT NULL,
    subtype text,
    name text,
    municipality_code text,
    geom geometry(Point, 4326) NOT NULL
);
CREATE INDEX facilities_geom_idx ON facilities USING gist (geom);
CREATE INDEX facilities_type_idx ON facilities (type);

CREATE TABLE public_spaces (
    space_id text PRIMARY KEY,
    type text NOT NULL,
    name text,
    geom geometry(MultiPolygon, 4326) NOT NULL
);
CREATE INDEX public_spaces_geom_idx ON public_spaces USING gist (geom);
