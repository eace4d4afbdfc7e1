-- Each book's stored item-item weights in a run of a weights kind (knn similarities, EASE's B),
-- heaviest first: the published model predicts and scores through these rows alone.
-- grain: one row per (run_id, book_idx, rank); key: (run_id, book_idx, rank), unique (run_id, book_idx, neighbour_idx)
-- upstream: none (written by warehouse.store at publish)
-- parameters: none
-- materialized: ddl
create table if not exists models.book_weights (
    run_id bigint not null,
    book_idx integer not null,
    rank integer not null,
    neighbour_idx integer not null,
    weight double not null
)
