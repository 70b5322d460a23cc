-- Core layers, the indicator values and the load-run journal. Runs with search_path set to the
-- observatory's schema, then public (where the postgis extension lives).

CREATE TABLE municipalities (
    code text PRIMARY KEY,
    name text NOT NULL,
    department text,
    area_km2 double precision,
    population_2007 bigint,
    valid_from date,
    valid_to date,
    geom geometry(MultiPolygon, 4326) NOT NULL
);
CREATE INDEX municipalities_geom_idx ON municipalities USING gist (geom);

CREATE TABLE zoning (
    zone_id text PRIMARY KEY,
    land_use_class text NOT NULL,
    subclass text,
    source_code text,
    plan_version text,
    geom geometry(MultiPolygon, 4326) NOT NULL
);
CREATE INDEX zoning_geom_idx ON zoning USING gist (geom);

CREATE TABLE permits (
    permit_id text PRIMARY KEY,
    kind text NOT NULL,
    use_class text,
    floor_area_m2 double precision,
    investment_usd double precision,
    submitted date,
    resolved date,
    status text,
    municipality_code text,
    geom geometry(Point, 4326) NOT NULL
);
CREATE INDEX permits_geom_idx ON permits USING gist (geom);
CREATE INDEX permits_resolved_idx ON permits (resolved);
CREATE INDEX permits_municipality_idx ON permits (municipality_code);

CREATE TABLE indicators (
    value_id text PRIMARY KEY,
    indicator_id text NOT NULL,
    theme text NOT NULL,
    municipality_code text NOT NULL,
    municipality_name text,
    period bigint NOT NULL,
    value double precision,
    unit text,
    inputs text,
    input_runs text,
    computed_at text,
    code_version text,
    geom geometry(MultiPolygon, 4326) NOT NULL
);
CREATE INDEX indicators_geom_idx ON indicators USING gist (geom);
CREATE INDEX indicators_indicator_period_idx ON indicators (indicator_id, period);

CREATE TABLE load_runs (
    run_id text PRIMARY KEY,
    layer text NOT NULL,
    source_file text NOT NULL,
    source_sha256 text NOT NULL,
    rows_read bigint NOT NULL,
    rows_loaded bigint NOT NULL,
    rows_rejected bigint NOT NULL,
    rejects_file text NOT NULL,
    started_at text NOT NULL,
    finished_at text NOT NULL,
    code_version text NOT NULL
);
