-- The CREATE INDEX statements that give a staged table the indexes of the live table it will
-- replace (the primary key excepted: it is a constraint), names prefixed like the staged table.
-- (%% is a literal percent sign: psycopg reads single ones as placeholders.)
SELECT replace(
           replace(i.indexdef,
                   format(' ON %%I.%%I ', %(schema)s::text, %(table)s::text),
                   format(' ON %%I.%%I ', %(schema)s::text, %(staging)s::text)),
           format('INDEX %%I ', i.indexname),
           format('INDEX %%I ', %(staging)s::text || substr(i.indexname, length(%(table)s::text) + 1)))
FROM pg_indexes i
WHERE i.schemaname = %(schema)s
  AND i.tablename = %(table)s
  AND i.indexname NOT IN (SELECT conname FROM pg_constraint WHERE conrelid = %(qualified)s::regclass)
