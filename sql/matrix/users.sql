-- Dense user indices for the filtered matrix: the only user mapping Python ever uses.
-- grain: one row per user; key: user_idx (0..n_users-1, ordered by user_key), unique user_key
-- upstream: matrix.filtered_ratings
-- parameters: none
with ratings as (
    select * from matrix.filtered_ratings
),

per_user as (
    select user_key, count(*) as n_ratings, avg(rating) as mean_rating
    from ratings
    group by user_key
),

final as (
    select cast(row_number() over (order by user_key) - 1 as integer) as user_idx, *
    from per_user
)

select * from final
