-- Offending rows: user indices that are not exactly 0..n-1, or user keys listed twice.
-- upstream: matrix.users
with users as (
    select * from matrix.users
),

final as (
    select user_idx, user_key, 'idx out of 0..n-1 or repeated' as problem
    from users
    qualify user_idx <> row_number() over (order by user_idx) - 1
        or count(*) over (partition by user_key) > 1
        or user_idx is null
)

select * from final
