-- User biases of the latest published run of each kind, by the source's user key.
-- grain: one row per (kind, user_idx); key: (kind, user_idx), unique (kind, user_key)
-- upstream: main.latest_runs, models.user_bias, models.run_users
-- parameters: none
-- materialized: view
with latest as (
    select kind, run_id from main.latest_runs
),

biases as (
    select * from models.user_bias
),

final as (
    select l.kind, f.run_id, f.user_idx, ru.user_key, f.bias
    from biases as f
    inner join latest as l on l.run_id = f.run_id
    inner join models.run_users as ru on ru.run_id = f.run_id and ru.user_idx = f.user_idx
)

select * from final
