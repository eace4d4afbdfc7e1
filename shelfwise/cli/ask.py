"""Questions answered from the published models: similar books and recommendations."""

from __future__ import annotations

from pathlib import Path

import click

from base.errors import ShelfwiseError
from base.registry import fittable, kinds, spec
from shelfwise.cli.options import DB_OPTION
from shelfwise.cli.output import print_books


@click.command()
@click.argument("title")
@click.option(
    "--model",
    "kind",
    type=click.Choice(kinds(neighbours=True)),
    default=None,
    help="Whose book vectors or weights to compare [default: the best published for neighbours].",
)
@click.option("--n", type=click.IntRange(1, 200), default=10, help="How many books.")
@DB_OPTION
def similar(title: str, kind: str | None, n: int, db_path: Path) -> None:
    """Books nearest a title: by cosine of the model's book vectors, or its heaviest weights."""
    import shelfwise

    wh = shelfwise.open(db_path)
    kind = kind or wh.default_model("neighbours")
    book = wh.book(title, model=kind).row(0, named=True)
    books = wh.similar(title, model=kind, n=n)
    score = "cosine" if spec(kind).book_vectors else "weight"
    print_books(f"nearest to {book['title']} ({book['authors']}) under {kind}", books, score)


@click.command()
@click.option(
    "--user",
    "user_key",
    type=int,
    default=None,
    help="User id as in the source (goodbooks user_id).",
)
@click.option(
    "--books",
    "titles",
    multiple=True,
    help="Favourite titles: recommend near their centroid. Repeat or list several after one flag.",
)
@click.option(
    "--reader",
    "reader_name",
    default=None,
    help="A reader imported with `shelfwise reader import`: fold them into the model.",
)
@click.option(
    "--to-read",
    type=click.Choice(["include", "exclude"]),
    default="exclude",
    help="With --reader: count the to-read shelf as interest.",
)
@click.option(
    "--model",
    "kind",
    type=click.Choice(fittable()),
    default=None,
    help="Which model [default: the best published for ranking; with --books, for neighbours].",
)
@click.option("--n", type=click.IntRange(1, 200), default=10, help="How many books.")
@click.argument("more_titles", nargs=-1)
@DB_OPTION
def recommend(
    user_key: int | None,
    titles: tuple[str, ...],
    reader_name: str | None,
    to_read: str,
    kind: str | None,
    n: int,
    more_titles: tuple[str, ...],
    db_path: Path,
) -> None:
    """Recommend for a user (never a book they rated) or for a few favourite books (never those)."""
    import shelfwise

    titles = titles + more_titles
    if sum((user_key is not None, bool(titles), reader_name is not None)) != 1:
        raise ShelfwiseError("give one of --user ID, --books TITLE [TITLE ...] or --reader NAME")
    wh = shelfwise.open(db_path)
    kind = kind or wh.default_model("neighbours" if titles else "ranking")
    if reader_name is not None:
        books = wh.recommend(reader=reader_name, model=kind, n=n, to_read=to_read == "include")
        print_books(
            f"top {n} for {reader_name} under {kind}", books, "score", ("because", "because")
        )
    elif user_key is not None:
        books = wh.recommend(user=user_key, model=kind, n=n)
        print_books(f"top {n} for user {user_key} under {kind}", books, "score")
    else:
        books = wh.recommend(books=list(titles), model=kind, n=n)
        favourites = [wh.book(t, model=kind)["title"][0] or "" for t in titles]
        print_books(
            "near the centroid of " + "; ".join(favourites),
            books,
            "cosine",
            ("because", "closest favourite"),
        )
