-- Every rating and shelving from every loaded source, on warehouse-wide user and book keys.
-- grain: one row per (source, user_key, book_key); key: (source, user_key, book_key)
-- upstream: stg_goodbooks__ratings, stg_goodbooks__books, stg_ucsd__interactions, stg_ucsd__books
-- parameters: none
with goodbooks_ratings as (
    select * from staging.stg_goodbooks__ratings
),

goodbooks_books as (
    select goodbooks_book_id, book_key from staging.stg_goodbooks__books
),

ucsd_interactions as (
    select * from staging.stg_ucsd__interactions
),

ucsd_books as (
    select goodreads_book_id, book_key from staging.stg_ucsd__books
),

goodbooks as (
    select 'goodbooks' as source, r.user_key, b.book_key, r.rating, true as is_read, r.seq
    from goodbooks_ratings as r
    inner join goodbooks_books as b on b.goodbooks_book_id = r.goodbooks_book_id
),

ucsd_editions as (
    select
        'ucsd' as source,
        i.user_key,
        coalesce(b.book_key, -i.goodreads_book_id) as book_key,
        i.rating,
        i.is_read,
        i.seq
    from ucsd_interactions as i
    left join ucsd_books as b on b.goodreads_book_id = i.goodreads_book_id
),

-- Works listed with several editions: only their ratings can collide on (user, work).
multi_edition_works as (
    select book_key from ucsd_books group by book_key having count(*) > 1
),

-- Most interactions are with single-edition works and pass through without an aggregate.
ucsd_single as (
    select e.* from ucsd_editions as e anti join multi_edition_works as m on m.book_key = e.book_key
),

-- Several editions of one work collapse to one book: keep the user's strongest signal.
ucsd_collapsed as (
    select source, user_key, book_key,
        max(rating) as rating, bool_or(is_read) as is_read, max(seq) as seq
    from ucsd_editions as e
    semi join multi_edition_works as m on m.book_key = e.book_key
    group by source, user_key, book_key
),

final as (
    select * from goodbooks
    union all
    select * from ucsd_single
    union all
    select * from ucsd_collapsed
)

select * from final
