-- Each user's learned rating offset in a run (for popularity, book_bias holds rating counts).
-- grain: one row per (run_id, user_idx); key: (run_id, user_idx)
-- upstream: none (written by warehouse.store at publish)
-- parameters: none
-- materialized: ddl
create table if not exists models.user_bias (
    run_id bigint not null,
    user_idx integer not null,
    bias double not null
)
