-- Each book's five most-shelved genre-like tags (organisational shelves such as to-read left out).
-- grain: one row per book_key; key: book_key
-- upstream: stg_goodbooks__book_tags, stg_goodbooks__books, stg_ucsd__books
-- parameters: none
with goodbooks_tags as (
    select b.book_key, t.tag_name, sum(t.shelf_count) as shelf_count
    from staging.stg_goodbooks__book_tags as t
    inner join staging.stg_goodbooks__books as b on b.goodreads_book_id = t.goodreads_book_id
    group by all
),

ucsd_tags as (
    select b.book_key, lower(s.name) as tag_name, sum(try_cast(s.count as bigint)) as shelf_count
    from staging.stg_ucsd__books as b,
        unnest(cast(b.popular_shelves as struct(count varchar, name varchar)[])) as u(s)
    group by all
),

-- Shelves that say where or when a book is read, not what it is.
organisational as (
    select unnest([
        'to-read', 'currently-reading', 'favorites', 'favourites', 'owned', 'own', 'books-i-own',
        'owned-books', 'i-own', 'my-books', 'my-library', 'library', 'default', 'kindle', 'ebook',
        'ebooks', 'e-book', 'e-books', 'audiobook', 'audiobooks', 'audio', 'audible', 'wish-list',
        'wishlist', 'to-buy', 're-read', 'reread', 'series', 'book-club', 'bookclub', 'read-in-2016',
        'read-in-2015', 'read-in-2014', 'read-in-2013', 'abandoned', 'did-not-finish', 'dnf',
        'on-hold', 'all-time-favorites', 'favorite-books', 'favorite', 'faves', 'home-library',
        'shelfari-favorites', 'my-bookshelf', 'books', 'novels', 'fiction', 'read', 'have',
        'to-read-fiction', 'maybe', 'borrowed', 'kindle-books', 'paperback', 'hardcover', 'physical'
    ]) as tag_name
),

-- A shelf named after an author of the catalogue ('dan-brown') says who wrote the book, not what it is.
author_shelves as (
    select distinct regexp_replace(lower(trim(a.name)), '[^a-z0-9]+', '-', 'g') as tag_name
    from staging.stg_goodbooks__books as b, unnest(string_split(b.authors, ',')) as a(name)
    where b.authors is not null
),

all_tags as (
    select * from goodbooks_tags
    union all
    select * from ucsd_tags
),

ranked as (
    select book_key, tag_name, shelf_count,
        row_number() over (partition by book_key order by shelf_count desc, tag_name) as tag_rank
    from all_tags
    where tag_name not in (select tag_name from organisational)
        and tag_name not in (select tag_name from author_shelves)
        -- prefixes of reading logs and ownership, years, favourites of any kind, challenges, giveaways
        and not regexp_matches(tag_name, '^(read|to-read|owned|books?)-|[0-9]{4}|favou?rite|challenge|first-reads')
),

final as (
    select book_key, list(tag_name order by tag_rank) as top_tags
    from ranked
    where tag_rank <= 5
    group by book_key
)

select * from final
