-- Held-out metrics of the latest published run of each kind, with their intervals.
-- grain: one row per (kind, split, metric, k); key: (kind, split, metric, k)
-- upstream: main.latest_runs, models.metrics
-- parameters: none
-- materialized: view
with latest as (
    select * from main.latest_runs
),

metrics as (
    select * from models.metrics
),

final as (
    select
        l.kind, m.run_id, l.published, l.finished_at, m.split, m.metric, m.k, m.value,
        m.ci_low, m.ci_high
    from metrics as m
    inner join latest as l on l.run_id = m.run_id
)

select * from final
