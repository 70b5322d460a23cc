-- Shared by point_tile.sql and point_tile_cells.sql: from tallies (records per cell and summary
-- value, with the sums of their Web Mercator x and y), one aggregate per cell in tile units (y down):
-- its count, most common summary value (ties: the smallest) and mean position.
cells AS (
    SELECT sum(n)::integer AS count,
           (array_agg(summary ORDER BY n DESC, summary COLLATE "C")
               FILTER (WHERE summary IS NOT NULL))[1] AS {summary_name},
           ST_MakePoint((sum(sx) / sum(n) - %(left)s) * %(extent)s / %(size)s,
                        (%(top)s - sum(sy) / sum(n)) * %(extent)s / %(size)s) AS geom
    FROM tallies
    GROUP BY cx, cy
)
