-- Each user's learned factor vector in a run (kinds with vectors: see base.registry).
-- grain: one row per (run_id, user_idx); key: (run_id, user_idx)
-- upstream: none (written by warehouse.store at publish)
-- parameters: none
-- materialized: ddl
create table if not exists models.user_factors (
    run_id bigint not null,
    user_idx integer not null,
    vector float[] not null
)
