-- UCSD interactions with book csv ids mapped to Goodreads book ids where the map is loaded.
-- user_key stays the dense csv user id (cheap to join at 229M rows); raw.ucsd_user_id_map gives the hex id.
-- grain: one row per (user_id_csv, book_id_csv); key: (user_id_csv, book_id_csv)
-- upstream: raw.ucsd_interactions, raw.ucsd_book_id_map
-- parameters: none
-- materialized: view
with interactions as (
    select rowid as seq, * from raw.ucsd_interactions
),

book_map as (
    select * from raw.ucsd_book_id_map
),

final as (
    select
        i.user_id as user_key,
        -- Without the map the csv id stands in for the Goodreads book id.
        coalesce(b.book_id, i.book_id) as goodreads_book_id,
        -- 0 means shelved but not rated.
        cast(nullif(i.rating, 0) as tinyint) as rating,
        i.is_read = 1 as is_read,
        i.is_reviewed = 1 as is_reviewed,
        i.seq
    from interactions as i
    left join book_map as b on b.book_id_csv = i.book_id
)

select * from final
