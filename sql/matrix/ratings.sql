-- The indexed rating matrix with a deterministic train/test split.
-- random: a seeded hash of (user_key, book_key) puts test_fraction of ratings in test; hashing keys,
-- not indices, keeps a rating's side stable when other filters re-index the matrix.
-- temporal: each user's latest test_fraction of ratings (by source row order, seq) are test.
-- grain: one row per (user_idx, book_idx); key: (user_idx, book_idx)
-- upstream: matrix.filtered_ratings, matrix.users, matrix.books
-- parameters: $seed, $test_fraction, $split
with ratings as (
    select * from matrix.filtered_ratings
),

users as (
    select user_idx, user_key from matrix.users
),

books as (
    select book_idx, book_key from matrix.books
),

indexed as (
    select u.user_idx, b.book_idx, r.user_key, r.book_key, r.rating, r.is_read, r.seq
    from ratings as r
    inner join users as u on u.user_key = r.user_key
    inner join books as b on b.book_key = r.book_key
),

-- Only one branch yields rows: a bound parameter folds to a constant, so the other is pruned
-- (the temporal window over every user is not paid for a random split).
random_split as (
    select *, (hash(user_key, book_key, $seed) % 1000000) < $test_fraction * 1000000 as is_test
    from indexed
    where $split = 'random'
),

temporal_split as (
    select *,
        row_number() over (partition by user_idx order by seq desc)
            <= round($test_fraction * count(*) over (partition by user_idx)) as is_test
    from indexed
    where $split = 'temporal'
),

split as (
    select * from random_split
    union all
    select * from temporal_split
),

final as (
    select
        user_idx,
        book_idx,
        rating,
        is_read,
        case when is_test then 'test' else 'train' end as split,
        seq
    from split
    -- Stored split by split, each in CSR order: reading one split skips the other's row groups
    -- (zone maps on split) and Python builds its sparse matrix without sorting.
    order by split, user_idx, book_idx
)

select * from final
