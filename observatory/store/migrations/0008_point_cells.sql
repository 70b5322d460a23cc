-- Issue 10: point layers counted per grid cell at load (observatory/point_cells.py), so that dense
-- tiles are drawn from the counts; each table is replaced with its layer, in the same swap.
CREATE TABLE permits_cells (
    zoom smallint NOT NULL,
    level smallint NOT NULL,
    cx integer NOT NULL,
    cy integer NOT NULL,
    year smallint,
    summary text,
    n integer NOT NULL,
    sx double precision NOT NULL,
    sy double precision NOT NULL
);
CREATE INDEX permits_cells_cell_idx ON permits_cells (zoom, cx, cy);
CREATE TABLE complaints_cells (LIKE permits_cells);
CREATE INDEX complaints_cells_cell_idx ON complaints_cells (zoom, cx, cy);
CREATE TABLE incidents_cells (LIKE permits_cells);
CREATE INDEX incidents_cells_cell_idx ON incidents_cells (zoom, cx, cy);
CREATE TABLE facilities_cells (LIKE permits_cells);
CREATE INDEX facilities_cells_cell_idx ON facilities_cells (zoom, cx, cy);
CREATE TABLE transit_stops_cells (LIKE permits_cells);
CREATE INDEX transit_stops_cells_cell_idx ON transit_stops_cells (zoom, cx, cy);
