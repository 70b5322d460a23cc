-- A tile of a line or polygon layer: every feature whose box meets the buffered tile, clipped, and
-- the count its cap is checked on (the largest group of the layer's tile_cap_per values, or all of
-- them). Past the cap no tile is built: the caller refuses it rather than leave features out.
WITH bounds AS (
    SELECT ST_TileEnvelope(%(z)s, %(x)s, %(y)s) AS tile,
           ST_MakeEnvelope(%(west)s, %(south)s, %(east)s, %(north)s, 4326) AS search
), found AS (
    SELECT t.* FROM {table} t, bounds
    WHERE t.geom && bounds.search AND {where}
), counted AS (
    SELECT coalesce(max(n), 0) AS most FROM (SELECT count(*) AS n FROM found GROUP BY {groups}) AS g
), features AS (
    SELECT {columns},
           ST_AsMVTGeom(ST_Transform(t.geom, 3857), bounds.tile, %(extent)s, %(buffer)s, true) AS geom
    FROM found t, bounds
    WHERE (SELECT most FROM counted) <= %(cap)s
)
SELECT (SELECT ST_AsMVT(features.*, %(name)s, %(extent)s, 'geom') FROM features WHERE geom IS NOT NULL),
       (SELECT most FROM counted)
