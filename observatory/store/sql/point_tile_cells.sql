-- A point layer's tile from the cells counted at load (observatory/point_cells.py): whether the load
-- counted this tile ({rows}: all years, or by year), the records matching the filter in it, and
-- their tile of aggregates.
WITH tallies AS (
    SELECT cx, cy, summary, sum(n) AS n, sum(sx) AS sx, sum(sy) AS sy
    FROM {cells}
    WHERE zoom = %(z)s AND level = %(level)s AND cx BETWEEN %(first_cx)s AND %(last_cx)s
      AND cy BETWEEN %(first_cy)s AND %(last_cy)s AND {where}
    GROUP BY cx, cy, summary
), {cells_from_tallies}
SELECT EXISTS (SELECT 1 FROM {cells} WHERE zoom = %(z)s AND level = %(level)s AND cx BETWEEN %(first_cx)s AND %(last_cx)s
                AND cy BETWEEN %(first_cy)s AND %(last_cy)s AND {rows}),
       (SELECT sum(count) FROM cells),
       (SELECT ST_AsMVT(cells.*, %(name)s, %(extent)s, 'geom') FROM cells)
