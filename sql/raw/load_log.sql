-- Every raw file a load read: where from, its checksum, rows read and rejected (refresh compares checksums).
-- grain: one row per (load_id, raw_table); key: (load_id, raw_table)
-- upstream: none (written by warehouse.load)
-- parameters: none
-- materialized: ddl
create table if not exists raw.load_log (
    load_id bigint not null,
    source varchar not null,
    raw_table varchar not null,
    file varchar not null,
    size bigint not null,
    sha256 varchar not null,
    rows_read bigint not null,
    rows_rejected bigint not null,
    loaded_at timestamp not null
)
