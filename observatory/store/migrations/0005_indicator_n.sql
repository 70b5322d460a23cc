-- Themes II: the records behind each indicator value, and a flag when they are too few to trust.

ALTER TABLE indicators
    ADD COLUMN n bigint,
    ADD COLUMN flag text;
