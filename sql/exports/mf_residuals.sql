-- The bias residual of every cell a Spark mf fit sees, with the biases it is net of: rating minus
-- the global mean mu and the damped user and book biases of analytics.baseline.fit_biases
-- (reg_user = reg_book = $reg_bias, five alternations starting from the books; each bias is the
-- damped mean sum(residual) / (n + $reg_bias) of its cells' residuals given the other side).
-- Spark's explicit ALS factorises the residuals; the biases are published as they are.
-- grain: one row per rated (user_idx, book_idx) of temp.spark_input; key: (user_idx, book_idx)
-- upstream: temp.spark_input (the train split of matrix.ratings, or tune's carve of it)
-- parameters: $reg_bias
with cells as (
    select user_idx, book_idx, rating::double as rating from temp.spark_input where rating > 0
),

centred as (
    select user_idx, book_idx, rating - avg(rating) over () as r, avg(rating) over () as mu
    from cells
),

-- Alternation 1 starts from user biases of zero.
book_1 as (
    select book_idx, sum(r) / (count(*) + $reg_bias) as b from centred group by book_idx
),

user_1 as (
    select c.user_idx, sum(c.r - bb.b) / (count(*) + $reg_bias) as b
    from centred as c
    inner join book_1 as bb on bb.book_idx = c.book_idx
    group by c.user_idx
),

book_2 as (
    select c.book_idx, sum(c.r - ub.b) / (count(*) + $reg_bias) as b
    from centred as c
    inner join user_1 as ub on ub.user_idx = c.user_idx
    group by c.book_idx
),

user_2 as (
    select c.user_idx, sum(c.r - bb.b) / (count(*) + $reg_bias) as b
    from centred as c
    inner join book_2 as bb on bb.book_idx = c.book_idx
    group by c.user_idx
),

book_3 as (
    select c.book_idx, sum(c.r - ub.b) / (count(*) + $reg_bias) as b
    from centred as c
    inner join user_2 as ub on ub.user_idx = c.user_idx
    group by c.book_idx
),

user_3 as (
    select c.user_idx, sum(c.r - bb.b) / (count(*) + $reg_bias) as b
    from centred as c
    inner join book_3 as bb on bb.book_idx = c.book_idx
    group by c.user_idx
),

book_4 as (
    select c.book_idx, sum(c.r - ub.b) / (count(*) + $reg_bias) as b
    from centred as c
    inner join user_3 as ub on ub.user_idx = c.user_idx
    group by c.book_idx
),

user_4 as (
    select c.user_idx, sum(c.r - bb.b) / (count(*) + $reg_bias) as b
    from centred as c
    inner join book_4 as bb on bb.book_idx = c.book_idx
    group by c.user_idx
),

book_5 as (
    select c.book_idx, sum(c.r - ub.b) / (count(*) + $reg_bias) as b
    from centred as c
    inner join user_4 as ub on ub.user_idx = c.user_idx
    group by c.book_idx
),

user_5 as (
    select c.user_idx, sum(c.r - bb.b) / (count(*) + $reg_bias) as b
    from centred as c
    inner join book_5 as bb on bb.book_idx = c.book_idx
    group by c.user_idx
),

final as (
    select
        c.user_idx,
        c.book_idx,
        (c.r - ub.b - bb.b)::real as residual,
        c.mu as global_mean,
        ub.b as user_bias,
        bb.b as book_bias
    from centred as c
    inner join user_5 as ub on ub.user_idx = c.user_idx
    inner join book_5 as bb on bb.book_idx = c.book_idx
)

select * from final
