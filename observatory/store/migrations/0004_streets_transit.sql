-- Themes I: the street network and public transport (mobility and walking access).

CREATE TABLE streets (
    street_id text PRIMARY KEY,
    highway text NOT NULL,
    name text,
    oneway bigint,
    period bigint NOT NULL,
    geom geometry(MultiLineString, 4326) NOT NULL
);
CREATE INDEX streets_geom_idx ON streets USING gist (geom);

CREATE TABLE transit_routes (
    route_id text PRIMARY KEY,
    name text,
    mode text NOT NULL,
    agency text NOT NULL,
    geom geometry(MultiLineString, 4326) NOT NULL
);
CREATE INDEX transit_routes_geom_idx ON transit_routes USING gist (geom);
CREATE INDEX transit_routes_agency_idx ON transit_routes (agency);

CREATE TABLE transit_stops (
    stop_id text PRIMARY KEY,
    name text,
    municipality_code text,
    geom geometry(Point, 4326) NOT NULL
);
CREATE INDEX transit_stops_geom_idx ON transit_stops USING gist (geom);
CREATE INDEX transit_stops_municipality_code_idx ON transit_stops (municipality_code);
