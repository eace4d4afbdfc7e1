-- The book index mapping a run was fitted with, so a later transform never mislabels it.
-- grain: one row per (run_id, book_idx); key: (run_id, book_idx), unique (run_id, book_key)
-- upstream: none (copied from matrix.books by warehouse.store at publish)
-- parameters: none
-- materialized: ddl
create table if not exists models.run_books (
    run_id bigint not null,
    book_idx integer not null,
    book_key bigint not null
)
