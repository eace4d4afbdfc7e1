-- Rows a load refused, with the line they came from and why (never silently dropped).
-- grain: one row per rejected line of a file; key: (load_id, file, line)
-- upstream: none (written by warehouse.load)
-- parameters: none
-- materialized: ddl
create table if not exists raw.rejects (
    load_id bigint not null,
    file varchar not null,
    line bigint,
    raw_text varchar,
    reason varchar not null
)
