-- Each book's stored nearest books under the latest published run of each kind, titles joined.
-- grain: one row per (kind, book_idx, rank); key: (kind, book_idx, rank)
-- upstream: main.latest_runs, models.book_neighbours, models.run_books, core.books
-- parameters: none
-- materialized: view
with latest as (
    select kind, run_id from main.latest_runs
),

neighbours as (
    select * from models.book_neighbours
),

final as (
    select
        l.kind, n.run_id, n.book_idx, rb.book_key, b.title, n.rank, n.neighbour_idx,
        nb.book_key as neighbour_key, b2.title as neighbour_title,
        b2.authors as neighbour_authors, n.score
    from neighbours as n
    inner join latest as l on l.run_id = n.run_id
    inner join models.run_books as rb on rb.run_id = n.run_id and rb.book_idx = n.book_idx
    inner join models.run_books as nb on nb.run_id = n.run_id and nb.book_idx = n.neighbour_idx
    left join core.books as b on b.book_key = rb.book_key
    left join core.books as b2 on b2.book_key = nb.book_key
)

select * from final
