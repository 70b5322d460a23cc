-- The CREATE INDEX statements that give a staged table the indexes of the live table it will
-- replace, names prefixed like the staged table; with each, the primary key it backs (or NULL),
-- and whether it is a spatial (GiST) index, the slowest to build.
-- (%% is a literal percent sign: psycopg reads single ones as placeholders.)
SELECT replace(
           replace(i.indexdef,
                   format(' ON %%I.%%I ', %(schema)s::text, %(table)s::text),
                   format(' ON %%I.%%I ', %(schema)s::text, %(staging)s::text)),
           format('INDEX %%I ', i.indexname),
           format('INDEX %%I ', %(staging)s::text || substr(i.indexname, length(%(table)s::text) + 1))),
       c.conname,
       i.indexdef LIKE '%% USING gist %%'
FROM pg_indexes i
LEFT JOIN pg_constraint c
       ON c.conrelid = %(qualified)s::regclass AND c.contype = 'p' AND c.conname = i.indexname
WHERE i.schemaname = %(schema)s
  AND i.tablename = %(table)s
