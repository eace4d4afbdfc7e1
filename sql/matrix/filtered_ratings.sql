-- Rated interactions of one source that pass the activity filters (books first, then users, one pass).
-- grain: one row per (user_key, book_key); key: (user_key, book_key)
-- upstream: core.ratings
-- parameters: $source, $min_book_ratings, $min_user_ratings
with rated as (
    select user_key, book_key, rating, is_read, seq
    from core.ratings
    where source = $source and rating is not null
),

popular_books as (
    select book_key from rated group by book_key having count(*) >= $min_book_ratings
),

on_popular_books as (
    select r.* from rated as r semi join popular_books as b on b.book_key = r.book_key
),

active_users as (
    select user_key from on_popular_books group by user_key having count(*) >= $min_user_ratings
),

final as (
    select r.* from on_popular_books as r semi join active_users as u on u.user_key = r.user_key
)

select * from final
