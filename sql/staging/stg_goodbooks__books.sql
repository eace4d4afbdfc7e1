-- Goodbooks books.csv with types cast; book_key is the Goodreads work_id (the dataset README's mapping).
-- isbn10 restores the leading zeros books.csv lost (439023483 -> 0439023483); isbn13 keeps only a
-- clean 13-digit value (the file's float 9.78043902348e+12 has lost digits and is never trusted).
-- grain: one row per goodbooks book_id; key: goodbooks_book_id
-- upstream: raw.goodbooks_books, raw.goodbooks_ratings (books rated but missing from books.csv)
-- parameters: none
-- materialized: view
with books as (
    select * from raw.goodbooks_books
),

rated_ids as (
    select distinct book_id from raw.goodbooks_ratings
),

typed as (
    select
        try_cast(book_id as bigint) as goodbooks_book_id,
        try_cast(goodreads_book_id as bigint) as goodreads_book_id,
        try_cast(work_id as bigint) as work_id,
        try_cast(best_book_id as bigint) as best_book_id,
        case
            when regexp_full_match(trim(isbn), '[0-9]{1,9}[0-9Xx]')
                then lpad(upper(trim(isbn)), 10, '0')
        end as isbn10,
        case when regexp_full_match(trim(isbn13), '97[89][0-9]{10}') then trim(isbn13) end as isbn13,
        nullif(trim(title), '') as title,
        nullif(trim(authors), '') as authors,
        try_cast(try_cast(original_publication_year as double) as integer) as publication_year,
        try_cast(average_rating as double) as average_rating,
        try_cast(ratings_count as bigint) as ratings_count,
        nullif(image_url, '') as image_url
    from books
),

-- Ratings may name books that books.csv lacks (or books.csv may be absent): keep them, untitled.
unlisted as (
    select
        r.book_id as goodbooks_book_id,
        null::bigint as goodreads_book_id,
        null::bigint as work_id,
        null::bigint as best_book_id,
        null::varchar as isbn10,
        null::varchar as isbn13,
        null::varchar as title,
        null::varchar as authors,
        null::integer as publication_year,
        null::double as average_rating,
        null::bigint as ratings_count,
        null::varchar as image_url
    from rated_ids as r
    anti join typed as t on t.goodbooks_book_id = r.book_id
),

final as (
    select
        -- A book without a work id keeps a key of its own: the negated source id.
        coalesce(work_id, -goodbooks_book_id) as book_key,
        *
    from (select * from typed where goodbooks_book_id is not null union all select * from unlisted)
)

select * from final
