-- Real data in: official facts and the 2024 crosswalk on municipalities, the geography of each
-- indicator value, tabular statistics, and load runs that record the manifest and the repairs.

ALTER TABLE municipalities
    ADD COLUMN official_area_km2 double precision,
    ADD COLUMN poverty_rate_2007 double precision,
    ADD COLUMN municipality_2024_code text,
    ADD COLUMN municipality_2024_name text;

ALTER TABLE indicators ADD COLUMN geography text NOT NULL DEFAULT 'municipios_2007';
CREATE INDEX indicators_geography_idx ON indicators (geography);

CREATE TABLE statistics (
    stat_id text PRIMARY KEY,
    municipality_code text NOT NULL,
    period bigint NOT NULL,
    variable text NOT NULL,
    value double precision,
    unit text,
    source text,
    geom geometry(MultiPolygon, 4326) NOT NULL
);
CREATE INDEX statistics_geom_idx ON statistics USING gist (geom);
CREATE INDEX statistics_variable_period_idx ON statistics (variable, period);

ALTER TABLE load_runs RENAME COLUMN rejects_file TO report_file;
ALTER TABLE load_runs
    ADD COLUMN manifest_file text NOT NULL DEFAULT '',
    ADD COLUMN manifest_sha256 text NOT NULL DEFAULT '',
    ADD COLUMN rows_repaired bigint NOT NULL DEFAULT 0;
