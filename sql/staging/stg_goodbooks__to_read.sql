-- Goodbooks to-read marks (an implicit signal: the user shelved the book to read later).
-- grain: one row per (user_key, goodbooks_book_id); key: (user_key, goodbooks_book_id)
-- upstream: raw.goodbooks_to_read
-- parameters: none
-- materialized: view
with source as (
    select * from raw.goodbooks_to_read
),

final as (
    select user_id as user_key, book_id as goodbooks_book_id
    from source
)

select * from final
