-- Goodbooks shelf counts per book with tag names joined.
-- grain: one row per (goodreads_book_id, tag_id) as in the source (the real file repeats a few pairs)
-- upstream: raw.goodbooks_book_tags, raw.goodbooks_tags
-- parameters: none
-- materialized: view
with book_tags as (
    select * from raw.goodbooks_book_tags
),

tags as (
    select * from raw.goodbooks_tags
),

final as (
    select
        bt.goodreads_book_id,
        bt.tag_id,
        lower(t.tag_name) as tag_name,
        bt.count as shelf_count
    from book_tags as bt
    inner join tags as t on t.tag_id = bt.tag_id
)

select * from final
