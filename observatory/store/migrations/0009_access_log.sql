-- Issue 19: every restricted read (who, what, when), appended by the API. Loads never touch it.
CREATE TABLE access_log (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at timestamptz NOT NULL,
    subject text NOT NULL,
    role text NOT NULL,
    via text NOT NULL,
    method text NOT NULL,
    path text NOT NULL,
    layer text,
    status smallint NOT NULL
);
CREATE INDEX access_log_at_idx ON access_log (at DESC, id DESC);
