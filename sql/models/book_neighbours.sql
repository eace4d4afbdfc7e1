-- Each book's nearest books by cosine of a run's book vectors, best first.
-- grain: one row per (run_id, book_idx, rank); key: (run_id, book_idx, rank)
-- upstream: none (written by warehouse.store at publish)
-- parameters: none
-- materialized: ddl
create table if not exists models.book_neighbours (
    run_id bigint not null,
    book_idx integer not null,
    rank integer not null,
    neighbour_idx integer not null,
    score double not null
)
