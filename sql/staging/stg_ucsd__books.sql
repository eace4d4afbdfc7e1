-- UCSD goodreads_books.json with types cast and author names resolved where the authors file is loaded.
-- grain: one row per Goodreads book_id; key: goodreads_book_id
-- upstream: raw.ucsd_books, raw.ucsd_authors
-- parameters: none
-- materialized: view
with books as (
    select * from raw.ucsd_books
),

authors as (
    select * from raw.ucsd_authors
),

author_ids as (
    select book_id, list_transform(cast(authors as struct(author_id varchar, role varchar)[]), lambda x: x.author_id) as ids
    from books
),

author_refs as (
    -- Two unnests in one select zip together: each author id with its position.
    select book_id, unnest(ids) as author_id, unnest(range(1, len(ids) + 1)) as pos
    from author_ids
),

book_authors as (
    select r.book_id, string_agg(coalesce(a.name, r.author_id), ', ' order by r.pos) as authors
    from author_refs as r
    left join authors as a on a.author_id = r.author_id
    group by r.book_id
),

final as (
    select
        try_cast(b.book_id as bigint) as goodreads_book_id,
        coalesce(try_cast(nullif(b.work_id, '') as bigint), -try_cast(b.book_id as bigint)) as book_key,
        try_cast(nullif(b.work_id, '') as bigint) as work_id,
        case
            when regexp_full_match(trim(b.isbn), '[0-9]{9}[0-9Xx]') then upper(trim(b.isbn))
        end as isbn10,
        case
            when regexp_full_match(trim(b.isbn13), '97[89][0-9]{10}') then trim(b.isbn13)
        end as isbn13,
        nullif(trim(b.title), '') as title,
        ba.authors,
        try_cast(nullif(b.publication_year, '') as integer) as publication_year,
        try_cast(nullif(b.average_rating, '') as double) as average_rating,
        try_cast(nullif(b.ratings_count, '') as bigint) as ratings_count,
        nullif(b.image_url, '') as image_url,
        b.popular_shelves
    from books as b
    left join book_authors as ba on ba.book_id = b.book_id
    where try_cast(b.book_id as bigint) is not null
)

select * from final
