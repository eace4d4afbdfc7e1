-- One pruning step of the iterated k-core: drop users and books that fell below the thresholds.
-- The runner repeats this model until its row count stops shrinking (only with --kcore).
-- grain: one row per (user_key, book_key); key: (user_key, book_key)
-- upstream: matrix.filtered_ratings (replaces it)
-- parameters: $min_book_ratings, $min_user_ratings
-- materialized: table matrix.filtered_ratings
with ratings as (
    select * from matrix.filtered_ratings
),

counted as (
    select *,
        count(*) over (partition by user_key) as user_n,
        count(*) over (partition by book_key) as book_n
    from ratings
),

final as (
    select * exclude (user_n, book_n)
    from counted
    where user_n >= $min_user_ratings and book_n >= $min_book_ratings
)

select * from final
