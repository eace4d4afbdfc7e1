-- Held-out scores of a run with 95% bootstrap intervals over users (written by evaluate).
-- grain: one row per (run_id, split, metric, k); key: (run_id, split, metric, k)
-- upstream: none (written by warehouse.store)
-- parameters: none
-- materialized: ddl
create table if not exists models.metrics (
    run_id bigint not null,
    metric varchar not null,
    k integer,
    value double not null,
    ci_low double,
    ci_high double,
    split varchar
)
