-- The latest published run of each kind: the one definition of "the current model" every reader uses.
-- grain: one row per kind; key: kind (run_id is unique too)
-- upstream: models.runs
-- parameters: none
-- materialized: view
with runs as (
    select * from models.runs
),

published as (
    select * from runs where published
),

final as (
    select kind, run_id, * exclude (kind, run_id)
    from published
    qualify row_number() over (partition by kind order by run_id desc) = 1
)

select * from final
