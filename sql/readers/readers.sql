-- Every reader whose Goodreads library export was imported: kept apart from the dataset's ratings.
-- grain: one row per reader; key: reader_id, unique name
-- upstream: none (written by warehouse.readers)
-- parameters: none
-- materialized: ddl
create table if not exists readers.readers (
    reader_id bigint primary key,
    name varchar not null unique,
    file varchar not null,
    sha256 varchar not null,
    imported_at timestamp not null,
    rows bigint not null,
    matched bigint not null
)
