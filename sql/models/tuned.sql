-- One row per `shelfwise tune KIND`: the chosen params (a params dataclass, serialised, so
-- registry.make_params accepts them as they are), how they scored on validation, every trial.
-- grain: one row per tuning; key: tune_id
-- upstream: none (written by shelfwise.pipeline.tune)
-- parameters: none
-- materialized: ddl
create table if not exists models.tuned (
    tune_id bigint not null,
    kind varchar not null,
    params json not null,
    metric varchar not null,
    value double not null,
    tuned_at timestamp not null,
    input_fingerprint varchar not null,
    source varchar not null,
    validation_fraction double not null,
    seed bigint not null,
    seconds double not null,
    trials json not null
)
