-- Goodbooks ratings renamed to warehouse names; source row order kept as seq (time order in the real file).
-- grain: one row per (user_id, book_id); key: (user_id, book_id)
-- upstream: raw.goodbooks_ratings
-- parameters: none
-- materialized: view
with source as (
    select rowid as seq, user_id, book_id, rating from raw.goodbooks_ratings
),

final as (
    select
        user_id as user_key,
        book_id as goodbooks_book_id,
        cast(rating as tinyint) as rating,
        seq
    from source
)

select * from final
