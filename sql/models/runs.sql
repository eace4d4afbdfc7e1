-- Every fit: its kind, params JSON, the matrix build it saw, and whether it is published.
-- A killed fit stays visible as 'running'; a failed one as 'failed' (a run log, kept by design).
-- grain: one row per run; key: run_id
-- upstream: none (written by warehouse.store)
-- parameters: none
-- materialized: ddl
create table if not exists models.runs (
    run_id bigint primary key,
    kind varchar not null,
    source varchar not null,
    params json not null,
    input_fingerprint varchar not null,
    started_at timestamp not null,
    finished_at timestamp,
    seconds double,
    status varchar not null,
    published boolean not null default false,
    info json
)
