-- Every identifier a book is known by, for matching a reader's Goodreads export to the catalogue:
-- Goodreads edition ids (goodbooks goodreads_book_id and best_book_id, every UCSD edition of a
-- work), ISBN-13s (as given, or derived from the ISBN-10 with its check digit) and ISBN-10s.
-- grain: one row per (id_type, id_value, book_key); key: (id_type, id_value, book_key)
-- upstream: staging.stg_goodbooks__books, staging.stg_ucsd__books, core.books
-- parameters: none
with goodbooks as (
    select * from staging.stg_goodbooks__books
),

ucsd as (
    select * from staging.stg_ucsd__books
),

books as (
    select book_key from core.books
),

editions as (
    select book_key, goodreads_book_id, best_book_id, null::bigint as ucsd_edition, isbn10, isbn13
    from goodbooks
    union all
    select book_key, null, null, goodreads_book_id, isbn10, isbn13
    from ucsd
),

-- ISBN-13 of an ISBN-10: 978, its first nine digits, and the EAN check digit.
derived as (
    select
        *,
        case when isbn10 is not null then
            '978' || left(isbn10, 9) || cast((10 - list_sum(list_transform(
                range(12),
                lambda i: cast(substr('978' || left(isbn10, 9), i + 1, 1) as integer)
                    * (case when i % 2 = 0 then 1 else 3 end)
            )) % 10) % 10 as varchar)
        end as isbn13_from_10
    from editions
),

identifiers as (
    select book_key, 'goodreads' as id_type, cast(goodreads_book_id as varchar) as id_value
    from derived where goodreads_book_id is not null
    union all
    select book_key, 'goodreads', cast(best_book_id as varchar)
    from derived where best_book_id is not null
    union all
    select book_key, 'goodreads', cast(ucsd_edition as varchar)
    from derived where ucsd_edition is not null
    union all
    select book_key, 'isbn13', coalesce(isbn13, isbn13_from_10)
    from derived where coalesce(isbn13, isbn13_from_10) is not null
    union all
    select book_key, 'isbn13', isbn13_from_10
    from derived where isbn13_from_10 is not null and isbn13 is not null
    union all
    select book_key, 'isbn10', isbn10
    from derived where isbn10 is not null
),

final as (
    select distinct i.id_type, i.id_value, i.book_key
    from identifiers as i
    semi join books as b on b.book_key = i.book_key
)

select * from final
