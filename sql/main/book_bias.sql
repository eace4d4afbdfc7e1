-- Book biases of the latest published run of each kind, titles joined.
-- grain: one row per (kind, book_idx); key: (kind, book_idx), unique (kind, book_key)
-- upstream: main.latest_runs, models.book_bias, models.run_books, core.books
-- parameters: none
-- materialized: view
with latest as (
    select kind, run_id from main.latest_runs
),

biases as (
    select * from models.book_bias
),

final as (
    select l.kind, f.run_id, f.book_idx, rb.book_key, b.title, b.authors, f.bias
    from biases as f
    inner join latest as l on l.run_id = f.run_id
    inner join models.run_books as rb on rb.run_id = f.run_id and rb.book_idx = f.book_idx
    left join core.books as b on b.book_key = rb.book_key
)

select * from final
