-- mf's SVD++ book vectors y in a run (the last element the implicit bias term): a reader's taste
-- also draws on which books they rated; kept so a new reader folds in as the fit's users did.
-- grain: one row per (run_id, book_idx); key: (run_id, book_idx)
-- upstream: none (written by warehouse.store at publish)
-- parameters: none
-- materialized: ddl
create table if not exists models.book_implicit (
    run_id bigint not null,
    book_idx integer not null,
    vector float[] not null
)
