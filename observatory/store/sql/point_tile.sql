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
), mercator AS (
    -- Web Mercator (EPSG:3857) by its spherical formulas: the same numbers as ST_Transform, at a
    -- fraction of its cost over the hundreds of thousands of points of a zoomed-out tile.
    SELECT {summary} AS summary,
           6378137 * radians(ST_X(t.geom)) AS mx,
           6378137 * ln(tan(pi() / 4 + radians(ST_Y(t.geom)) / 2)) AS my
    FROM {table} t, bounds, probe
    WHERE probe.over AND t.geom && bounds.inside AND {where}
), placed AS (  -- each record's cell of the global grid (observatory/point_cells.py)
    SELECT summary, mx, my,
           floor((mx + %(half_world)s) / (2 * %(half_world)s) * %(cells_across)s) AS cx,
           floor((%(half_world)s - my) / (2 * %(half_world)s) * %(cells_across)s) AS cy
    FROM mercator
), tallies AS (  -- hashed, in memory: the records per cell and summary value inside the tile
    SELECT cx, cy, summary, count(*) AS n, sum(mx) AS sx, sum(my) AS sy
    FROM placed
    WHERE cx BETWEEN %(first_cx)s AND %(last_cx)s AND cy BETWEEN %(first_cy)s AND %(last_cy)s
    GROUP BY cx, cy, summary
), {cells_from_tallies}
SELECT coalesce((SELECT ST_AsMVT(singles.*, %(name)s, %(extent)s, 'geom') FROM singles
                 WHERE geom IS NOT NULL), '')
    || coalesce((SELECT ST_AsMVT(cells.*, %(name)s, %(extent)s, 'geom') FROM cells), '')
