-- Each book's learned factor vector in a run (kinds with vectors: see base.registry).
-- grain: one row per (run_id, book_idx); key: (run_id, book_idx)
-- upstream: none (written by warehouse.store at publish)
-- parameters: none
-- materialized: ddl
create table if not exists models.book_factors (
    run_id bigint not null,
    book_idx integer not null,
    vector float[] not null
)
