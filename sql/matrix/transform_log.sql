-- Every SQL model each transform built: rows, seconds and the transform's parameters (the matrix fingerprint).
-- grain: one row per (transform_id, model); key: (transform_id, model)
-- upstream: none (written by warehouse.runner)
-- parameters: none
-- materialized: ddl
create table if not exists matrix.transform_log (
    transform_id bigint not null,
    source varchar not null,
    model varchar not null,
    rows bigint,
    seconds double not null,
    params json not null,
    finished_at timestamp not null
)
