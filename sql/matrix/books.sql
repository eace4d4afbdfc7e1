-- Dense book indices for the filtered matrix: the only book mapping Python ever uses.
-- grain: one row per book; key: book_idx (0..n_books-1, ordered by book_key), unique book_key
-- upstream: matrix.filtered_ratings
-- parameters: none
with ratings as (
    select * from matrix.filtered_ratings
),

per_book as (
    select book_key, count(*) as n_ratings, avg(rating) as mean_rating
    from ratings
    group by book_key
),

final as (
    select cast(row_number() over (order by book_key) - 1 as integer) as book_idx, *
    from per_book
)

select * from final
