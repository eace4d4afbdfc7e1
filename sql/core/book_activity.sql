-- How many ratings, interactions and ratings of each star value each book has in each source, before any filter.
-- grain: one row per (source, book_key); key: (source, book_key)
-- upstream: core.ratings
-- parameters: none
-- ratings_1..ratings_5 count 1..5 stars (the loader rejects any other rating), so they sum to n_ratings.
with ratings as (
    select source, book_key, rating from core.ratings
),

final as (
    select
        source,
        book_key,
        count(rating) as n_ratings,  -- 0: only unrated shelvings (UCSD)
        count(*) as n_interactions,
        count(*) filter (where rating = 1) as ratings_1,
        count(*) filter (where rating = 2) as ratings_2,
        count(*) filter (where rating = 3) as ratings_3,
        count(*) filter (where rating = 4) as ratings_4,
        count(*) filter (where rating = 5) as ratings_5
    from ratings
    group by source, book_key
)

select * from final
