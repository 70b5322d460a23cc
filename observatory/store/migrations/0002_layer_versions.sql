-- One row per layer, rewritten in the same transaction as the layer's rows: the basis of ETags.
CREATE TABLE layer_versions (
    layer text PRIMARY KEY,
    tag text NOT NULL,
    changed_at timestamptz NOT NULL
);
