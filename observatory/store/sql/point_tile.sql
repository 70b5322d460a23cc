-- A point layer's tile (see observatory/tiles.py for the rules): its records with count 1 while
-- they fit under the cap (and the caller did not ask for aggregates), else one aggregate per grid
-- cell of the records inside the tile itself, with their count and most common summary value.
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
    -- Web Mercator (EPSG:3857) by its spherical formulas: the same numbers as ST_Transform, at a
    -- fraction of its cost over the hundreds of thousands of points of a zoomed-out tile.
    SELECT {summary} AS summary,
           (6378137 * radians(ST_X(t.geom)) - %(left)s) * %(extent)s / %(size)s AS col,
           (%(top)s - 6378137 * ln(tan(pi() / 4 + radians(ST_Y(t.geom)) / 2))) * %(extent)s / %(size)s AS row
    FROM {table} t, bounds, probe
    WHERE probe.over AND t.geom && bounds.inside AND {where}
), tallies AS (  -- hashed, in memory: the records per cell and summary value
    SELECT floor(col * %(side)s / %(extent)s) AS cx, floor(row * %(side)s / %(extent)s) AS cy, summary,
           count(*) AS n, sum(col) AS col, sum(row) AS row
    FROM placed
    WHERE col >= 0 AND col < %(extent)s AND row >= 0 AND row < %(extent)s
    GROUP BY 1, 2, 3
), cells AS (
    SELECT sum(n)::integer AS count,
           (array_agg(summary ORDER BY n DESC, summary COLLATE "C")
               FILTER (WHERE summary IS NOT NULL))[1] AS {summary_name},
           ST_MakePoint(sum(col) / sum(n), sum(row) / sum(n)) AS geom
    FROM tallies
    GROUP BY cx, cy
)
SELECT coalesce((SELECT ST_AsMVT(singles.*, %(name)s, %(extent)s, 'geom') FROM singles
                 WHERE geom IS NOT NULL), '')
    || coalesce((SELECT ST_AsMVT(cells.*, %(name)s, %(extent)s, 'geom') FROM cells), '')
