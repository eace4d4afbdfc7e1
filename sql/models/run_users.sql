-- The user index mapping a run was fitted with, so a later transform never mislabels it.
-- grain: one row per (run_id, user_idx); key: (run_id, user_idx), unique (run_id, user_key)
-- upstream: none (copied from matrix.users by warehouse.store at publish)
-- parameters: none
-- materialized: ddl
create table if not exists models.run_users (
    run_id bigint not null,
    user_idx integer not null,
    user_key bigint not null
)
