-- 2-D maps of a run's book vectors (method 'pca' or 'tsne') for the Embeddings page.
-- grain: one row per (run_id, method, book_idx); key: (run_id, method, book_idx)
-- upstream: none (written by warehouse.store at publish)
-- parameters: none
-- materialized: ddl
create table if not exists models.projections (
    run_id bigint not null,
    book_idx integer not null,
    method varchar not null,
    x double not null,
    y double not null
)
