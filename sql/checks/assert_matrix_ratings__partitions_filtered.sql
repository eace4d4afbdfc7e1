-- Offending rows: train and test together must be exactly the filtered ratings (nothing lost or added).
-- upstream: matrix.ratings, matrix.filtered_ratings
with counts as (
    select
        (select count(*) from matrix.ratings) as in_matrix,
        (select count(*) from matrix.filtered_ratings) as filtered
),

final as (
    select in_matrix, filtered, 'train + test != filtered ratings' as problem
    from counts
    where in_matrix <> filtered
)

select * from final
