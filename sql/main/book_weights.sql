-- Item-item weights of the latest published run of each weights kind (knn, ease), by book key.
-- knn's prediction for (user, book) is baseline + sum(weight * residual) / (sum(weight) + damping)
-- over the k heaviest of these rows whose neighbour the user rated (docs/models.md shows the query).
-- grain: one row per (kind, book_idx, rank); key: (kind, book_idx, rank)
-- upstream: main.latest_runs, models.book_weights, models.run_books, core.books
-- parameters: none
-- materialized: view
with latest as (
    select kind, run_id from main.latest_runs
),

weights as (
    select * from models.book_weights
),

final as (
    select
        l.kind, w.run_id, w.book_idx, rb.book_key, b.title, w.rank, w.neighbour_idx,
        nb.book_key as neighbour_key, b2.title as neighbour_title, w.weight
    from weights as w
    inner join latest as l on l.run_id = w.run_id
    inner join models.run_books as rb on rb.run_id = w.run_id and rb.book_idx = w.book_idx
    inner join models.run_books as nb on nb.run_id = w.run_id and nb.book_idx = w.neighbour_idx
    left join core.books as b on b.book_key = rb.book_key
    left join core.books as b2 on b2.book_key = nb.book_key
)

select * from final
