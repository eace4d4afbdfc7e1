-- The ALS confidence weight w of every cell a Spark fit sees: the same w the local engine computes
-- (analytics.als.confidence_matrix): the rating, 1 (binary), or its BM25 weight rescaled to mean 1.
-- BM25: w = r (k1 + 1) / (k1 ((1 - b) + b n_u / mean n) + r) * (ln n_users - ln(1 + n_i)), where
-- n_u is the user's rating sum, the mean is over every matrix user, n_i the book's cell count;
-- floored at 1e-3 of the largest w, then divided by the mean w. Cells rated below $min_rating
-- are dropped first. Each row also carries the BM25 statistics (idf of its book, mean row sum,
-- floor, scale) so a fit can record how it weighed readers.
-- grain: one row per kept (user_idx, book_idx) of temp.spark_input; key: (user_idx, book_idx)
-- upstream: temp.spark_input (the train split of matrix.ratings, or tune's carve of it), matrix.users
-- parameters: $weighting, $min_rating, $saturation (BM25 k1), $length_weight (BM25 b)
with cells as (
    select user_idx, book_idx, rating::double as rating
    from temp.spark_input
    where rating > 0 and rating >= $min_rating
),

matrix_users as (
    select count(*)::double as n_users from matrix.users
),

book_counts as (
    select book_idx, count(*) as n_book from cells group by book_idx
),

row_sums as (
    select user_idx, sum(rating) as row_sum from cells group by user_idx
),

mean_row as (
    select sum(c.rating) / any_value(m.n_users) as mean_row_sum
    from cells as c
    cross join matrix_users as m
),

bm25 as (
    select
        c.user_idx,
        c.book_idx,
        c.rating,
        ln(m.n_users) - ln(1 + b.n_book) as idf,
        r.mean_row_sum,
        c.rating * ($saturation + 1)
        / (
            $saturation * ((1 - $length_weight) + $length_weight * s.row_sum / r.mean_row_sum)
            + c.rating
        )
        * (ln(m.n_users) - ln(1 + b.n_book)) as raw
    from cells as c
    inner join row_sums as s on s.user_idx = c.user_idx
    inner join book_counts as b on b.book_idx = c.book_idx
    cross join matrix_users as m
    cross join mean_row as r
),

-- A book rated by (nearly) every user has idf <= 0: kept as weak positive evidence, not none.
floored as (
    select
        *,
        1e-3 * greatest(max(raw) over (), 1e-12) as floor,
        greatest(raw, 1e-3 * greatest(max(raw) over (), 1e-12)) as kept
    from bm25
),

scaled as (
    select *, avg(kept) over () as scale from floored
),

final as (
    select
        user_idx,
        book_idx,
        (case $weighting
            when 'rating' then rating
            when 'binary' then 1.0
            else kept / scale
        end)::real as confidence,
        idf,
        mean_row_sum,
        floor,
        scale
    from scaled
)

select * from final
