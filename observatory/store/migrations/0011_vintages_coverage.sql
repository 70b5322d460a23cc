-- Vintages and coverage: each indicator value lists the period of every input it used, and each
-- load run keeps what its source declares it covers (an absent record inside it is a zero).

ALTER TABLE indicators ADD COLUMN input_periods text;
ALTER TABLE load_runs ADD COLUMN coverage text NOT NULL DEFAULT '';
