-- A point layer's tile (see observatory/tiles.py for the rules): its records with count 1 while
-- they fit under the cap (and the caller did not ask for aggregates), else one aggregate per grid
-- cell of the records inside the tile itself, with their count and most common {summary}.
-- Only one of the two parts is non-empty: the tile holds one MVT layer.
WITH bounds AS (
    SELECT ST_TileEnvelope(%(z)s, %(x)s, %(y)s) AS tile,
           ST_MakeEnvelope(%(west)s, %(south)s, %(east)s, %(north)s, 4326) AS search,
           ST_MakeEnvelope(%(inner_west)s, %(inner_south)s, %(inner_east)s, %(inner_north)s, 4326) AS inside
), probe AS (
    SELECT %(aggregate)s OR count(*) > %(cap)s AS over
    FROM (SELECT 1 FROM {table} t, bounds WHERE t.geom && bounds.search AND {where} LIMIT %(cap)s + 1) hits
), singles AS (
    SELECT {columns}, 1 AS count,
           ST_AsMVTGeom(ST_Transform(t.geom, 3857), bounds.tile, %(extent)s, %(buffer)s, true) AS geom
    FROM {table} t, bounds, probe
    WHERE NOT probe.over AND t.geom && bounds.search AND {where}
), placed AS (
    SELECT {summary} AS summary,
           (ST_X(m) - ST_XMin(bounds.tile)) * %(extent)s / (ST_XMax(bounds.tile) - ST_XMin(bounds.tile)) AS col,
           (ST_YMax(bounds.tile) - ST_Y(m)) * %(extent)s / (ST_YMax(bounds.tile) - ST_YMin(bounds.tile)) AS row
    FROM (SELECT t.*, ST_Transform(t.geom, 3857) AS m FROM {table} t, bounds, probe
          WHERE probe.over AND t.geom && bounds.inside AND {where}) t, bounds
), cells AS (
    SELECT count(*)::integer AS count, mode() WITHIN GROUP (ORDER BY summary) AS {summary_name},
           ST_MakePoint(avg(col), avg(row)) AS geom
    FROM placed
    WHERE col >= 0 AND col < %(extent)s AND row >= 0 AND row < %(extent)s
    GROUP BY floor(col * %(side)s / %(extent)s), floor(row * %(side)s / %(extent)s)
)
SELECT coalesce((SELECT ST_AsMVT(singles.*, %(name)s, %(extent)s, 'geom') FROM singles
                 WHERE geom IS NOT NULL), '')
    || coalesce((SELECT ST_AsMVT(cells.*, %(name)s, %(extent)s, 'geom') FROM cells), '')
