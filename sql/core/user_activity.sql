-- How many ratings and interactions each user has in each source, before any filter (the Overview's long tail).
-- grain: one row per (source, user_key); key: (source, user_key)
-- upstream: core.ratings
-- parameters: none
with ratings as (
    select source, user_key, rating from core.ratings
),

final as (
    select
        source,
        user_key,
        count(rating) as n_ratings,  -- 0: only unrated shelvings (UCSD)
        count(*) as n_interactions
    from ratings
    group by source, user_key
)

select * from final
