-- A tile of a line or polygon layer: its features clipped to the buffered tile, at most the cap.
WITH bounds AS (
    SELECT ST_TileEnvelope(%(z)s, %(x)s, %(y)s) AS tile,
           ST_MakeEnvelope(%(west)s, %(south)s, %(east)s, %(north)s, 4326) AS search
), features AS (
    SELECT {columns},
           ST_AsMVTGeom(ST_Transform(t.geom, 3857), bounds.tile, %(extent)s, %(buffer)s, true) AS geom
    FROM {table} t, bounds
    WHERE t.geom && bounds.search AND {where}
    LIMIT %(cap)s
)
SELECT ST_AsMVT(features.*, %(name)s, %(extent)s, 'geom') FROM features
WHERE geom IS NOT NULL
