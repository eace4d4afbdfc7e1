-- One row per book across sources, keyed on the Goodreads work_id, with metadata and top tags.
-- grain: one row per book_key; key: book_key (goodbooks wins where both sources have a work)
-- upstream: stg_goodbooks__books, stg_ucsd__books, core.book_top_tags
-- parameters: none
with goodbooks as (
    select book_key, 'goodbooks' as source, goodbooks_book_id as source_book_id, goodreads_book_id,
        work_id, title, authors, publication_year, average_rating, ratings_count, image_url
    from staging.stg_goodbooks__books
),

ucsd as (
    select book_key, 'ucsd' as source, goodreads_book_id as source_book_id, goodreads_book_id,
        work_id, title, authors, publication_year, average_rating, ratings_count, image_url
    from staging.stg_ucsd__books
),

top_tags as (
    select * from core.book_top_tags
),

unioned as (
    select *, 1 as preference from goodbooks
    union all
    select *, 2 as preference from ucsd
),

-- UCSD lists each edition; keep the most-rated edition of a work.
deduplicated as (
    select * exclude (preference)
    from unioned
    qualify row_number() over (
        partition by book_key order by preference, ratings_count desc nulls last, source_book_id
    ) = 1
),

final as (
    select
        d.*,
        coalesce(t.top_tags, []::varchar[]) as top_tags,
        t.top_tags[1] as top_tag
    from deduplicated as d
    left join top_tags as t on t.book_key = d.book_key
)

select * from final
