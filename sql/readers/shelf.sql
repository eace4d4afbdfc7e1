-- Each row of a reader's export: the book it names, how (or why not) it matched the catalogue, the
-- reader's rating (null when unrated: the export's 0) and exclusive shelf.
-- grain: one row per (reader_id, line); key: (reader_id, line)
-- upstream: none (written by warehouse.readers)
-- parameters: none
-- materialized: ddl
create table if not exists readers.shelf (
    reader_id bigint not null,
    line bigint not null,
    goodreads_book_id bigint,
    title varchar,
    author varchar,
    isbn varchar,
    isbn13 varchar,
    rating tinyint,
    shelf varchar not null,
    date_read date,
    date_added date,
    book_key bigint,
    match_method varchar,
    unmatched_reason varchar
)
