"""Neighbour quality of the published models: how often a book's nearest books share its author.

Usage: python benchmarks/bench_neighbours.py --db PATH [--k 10] [--probe TITLE ...]

For every book whose (first) author has at least three books in the matrix, the share of its top-k
cosine neighbours (``main.book_neighbours``) by the same author, averaged over those books, beside
chance: the share a uniformly random other book of the matrix would have. A model that learned
taste puts an author's books together well above chance. Then the top 5 of a few probe titles.
Plain SQL over the warehouse views, so it reads any warehouse (real subset, generated, UCSD).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from warehouse.db import connect  # noqa: E402

# Each matrix book with its first author.
BOOKS = """
with books as (
    select mb.book_key, split_part(b.authors, ', ', 1) as author
    from matrix.books as mb
    inner join core.books as b on b.book_key = mb.book_key
)
"""

SAME_AUTHOR = (
    BOOKS
    + """,

prolific as (
    select author, count(*) as n_books from books group by author having count(*) >= 3
),

pairs as (
    select n.kind, n.book_key, n.rank, books.author,
        split_part(n.neighbour_authors, ', ', 1) = books.author as same
    from main.book_neighbours as n
    inner join books on books.book_key = n.book_key
    where n.rank <= $k and books.author in (select author from prolific)
),

per_book as (
    select kind, book_key, avg(same::int) as share from pairs group by kind, book_key
)

select kind, count(*) as books, avg(share) as same_author_share
from per_book group by kind order by kind
"""
)

# Chance: for a book by an author with n books among m, a random other book shares the author
# with probability (n - 1) / (m - 1); averaged over the same books as above.
CHANCE = (
    BOOKS
    + """,

counts as (select author, count(*) as n_books from books group by author)

select avg((c.n_books - 1) / ((select count(*) from books) - 1))
from books inner join counts as c using (author)
where c.n_books >= 3
"""
)

PROBE = """
select rank, neighbour_title, neighbour_authors, round(score, 3)
from main.book_neighbours
where kind = $kind and book_key = (
    select b.book_key from core.books as b inner join matrix.books using (book_key)
    where b.title ilike $title || '%' order by b.ratings_count desc nulls last limit 1
)
order by rank limit 5
"""


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--db", type=Path, required=True)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--probe", nargs="*", default=[])
    args = ap.parse_args()
    con = connect(args.db, read_only=True)
    chance = con.sql(CHANCE).fetchall()[0][0]
    print(
        "| model | books by authors with >= 3 books | "
        f"same-author share of top {args.k} | x chance |"
    )
    print("|---|---|---|---|")
    for kind, books, share in con.sql(SAME_AUTHOR, params={"k": args.k}).fetchall():
        print(f"| {kind} | {books:,} | {share:.3f} | {share / chance:.0f}x |")
    print(f"| chance (random other book) | | {chance:.4f} | 1x |")
    for title in args.probe:
        for kind in ("svd", "als", "mf", "knn", "ease"):
            rows = con.sql(PROBE, params={"kind": kind, "title": title}).fetchall()
            print(
                f"{kind}, nearest to {title!r}: "
                + "; ".join(f"{t} ({a}) {s}" for _, t, a, s in rows)
            )


if __name__ == "__main__":
    main()
