"""synth: synthetic goodbooks and UCSD dumps have the real shapes and the planted structure."""

from __future__ import annotations

import gzip
import json
import re
from itertools import pairwise
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from synth.common import allocate as _allocate
from synth.goodbooks import _series_of, generate_goodbooks
from synth.ucsd import _ucsd_sizes, generate_ucsd

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample" / "goodbooks"  # 1,000 real books (most rated), with their tags
REAL = REPO.parent / "shared" / "data" / "goodbooks-10k"  # the full real books.csv

DAN_BROWN = {
    "The Da Vinci Code": 26,
    "Angels & Demons": 9,
    "Deception Point": 145,
    "Digital Fortress": 170,
    "The Lost Symbol": 201,
    "Inferno": 240,
}  # goodbooks book_id


def sample_inputs() -> dict[str, Path]:
    return {
        "books_csv": SAMPLE / "books.csv.gz",
        "tags_csv": SAMPLE / "tags.csv.gz",
        "book_tags_csv": SAMPLE / "book_tags.csv.gz",
    }


def read_ints(path: Path) -> pl.DataFrame:
    return pl.read_csv(path, infer_schema_length=0).cast(pl.Int64)


def books_table(path: Path) -> pl.DataFrame:
    cols = ["book_id", "goodreads_book_id", "ratings_count", *[f"ratings_{s}" for s in range(1, 6)]]
    return (
        pl.read_csv(path, infer_schema=False)
        .select(["title", *cols])
        .with_columns([pl.col(c).cast(pl.Int64) for c in cols])
    )


def rate_of(ratings: pl.DataFrame, book_id: int) -> set[int]:
    return set(ratings.filter(pl.col("book_id") == book_id)["user_id"].to_list())


# --------------------------------------------------------------------------------------------------
# goodbooks
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def goodbooks(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    dest = tmp_path_factory.mktemp("goodbooks")
    counts = generate_goodbooks(
        dest, n_ratings=200_000, n_users=4_000, seed=7, progress=False, **sample_inputs()
    )
    return dest, counts


def test_goodbooks_files_headers_and_ranges(goodbooks: tuple[Path, dict[str, int]]) -> None:
    dest, counts = goodbooks
    names = sorted(p.name for p in dest.iterdir())
    assert names == ["book_tags.csv", "books.csv", "ratings.csv", "tags.csv", "to_read.csv"]
    assert (dest / "ratings.csv").read_text().splitlines()[0] == "user_id,book_id,rating"
    assert (dest / "to_read.csv").read_text().splitlines()[0] == "user_id,book_id"
    ratings, to_read = read_ints(dest / "ratings.csv"), read_ints(dest / "to_read.csv")
    books = books_table(dest / "books.csv")
    assert counts["ratings.csv"] == ratings.height == 200_000
    assert counts["to_read.csv"] == to_read.height == round(912_705 / 5_976_479 * 200_000)
    assert counts["books.csv"] == books.height == 1_000
    assert ratings["rating"].min() == 1 and ratings["rating"].max() == 5
    # Every user id 1..n_users has ratings; book ids are the real books.csv ids.
    assert sorted(ratings["user_id"].unique().to_list()) == list(range(1, 4_001))
    assert set(ratings["book_id"].to_list()) <= set(books["book_id"].to_list())
    assert set(to_read["book_id"].to_list()) <= set(books["book_id"].to_list())
    # Ordered by user, like the real file.
    assert ratings["user_id"].is_sorted() and to_read["user_id"].is_sorted()


def test_goodbooks_no_duplicate_pairs_and_to_read_not_rated(
    goodbooks: tuple[Path, dict[str, int]],
) -> None:
    dest, _ = goodbooks
    ratings, to_read = read_ints(dest / "ratings.csv"), read_ints(dest / "to_read.csv")
    assert ratings.select("user_id", "book_id").is_duplicated().sum() == 0
    assert to_read.is_duplicated().sum() == 0
    assert to_read.join(ratings, on=["user_id", "book_id"], how="inner").height == 0


def test_goodbooks_metadata_copied_byte_for_byte(goodbooks: tuple[Path, dict[str, int]]) -> None:
    dest, counts = goodbooks
    for name in ("books", "tags", "book_tags"):
        assert (dest / f"{name}.csv").read_bytes() == gzip.decompress(
            (SAMPLE / f"{name}.csv.gz").read_bytes()
        )
        assert counts[f"{name}.csv"] == len((dest / f"{name}.csv").read_bytes().splitlines()) - 1


def test_goodbooks_popularity_follows_ratings_count(goodbooks: tuple[Path, dict[str, int]]) -> None:
    dest, _ = goodbooks
    per_book = read_ints(dest / "ratings.csv").group_by("book_id").len()
    books = books_table(dest / "books.csv").join(per_book, on="book_id", how="left").fill_null(0)
    assert stats.spearmanr(books["ratings_count"], books["len"]).statistic > 0.7
    # Long-tailed: the most rated book has many times the median book's ratings.
    assert books["len"].max() > 8 * books["len"].median()


def test_goodbooks_star_distribution_follows_each_books_histogram(
    goodbooks: tuple[Path, dict[str, int]],
) -> None:
    dest, _ = goodbooks
    per_book = (
        read_ints(dest / "ratings.csv")
        .group_by("book_id")
        .agg(
            pl.len().alias("n"),
            *[(pl.col("rating") == s).mean().alias(f"gen_{s}") for s in range(1, 6)],
            pl.col("rating").mean().alias("gen_mean"),
        )
    )
    books = books_table(dest / "books.csv").join(per_book, on="book_id").filter(pl.col("n") >= 100)
    hist = books.select([f"ratings_{s}" for s in range(1, 6)]).to_numpy().astype(float)
    real_share = hist / hist.sum(axis=1, keepdims=True)
    real_mean = real_share @ np.arange(1, 6)
    assert len(books) > 100
    assert stats.pearsonr(real_mean, books["gen_mean"]).statistic > 0.7
    gen_share = books.select([f"gen_{s}" for s in range(1, 6)]).to_numpy()
    assert np.abs(gen_share - real_share).max() < 0.05


def test_goodbooks_user_activity_is_long_tailed(goodbooks: tuple[Path, dict[str, int]]) -> None:
    dest, _ = goodbooks
    per_user = read_ints(dest / "ratings.csv").group_by("user_id").len()["len"]
    assert per_user.min() >= 8  # a floor of 17 % of the mean (50 here)
    assert per_user.max() > 4 * per_user.median()
    assert per_user.mean() == 50


def test_goodbooks_plants_a_dan_brown_cluster(goodbooks: tuple[Path, dict[str, int]]) -> None:
    dest, _ = goodbooks
    ratings = read_ints(dest / "ratings.csv")
    davinci = rate_of(ratings, DAN_BROWN["The Da Vinci Code"])
    others = set().union(
        *(rate_of(ratings, b) for t, b in DAN_BROWN.items() if t != "The Da Vinci Code")
    )
    users = ratings["user_id"].n_unique()
    assert len(davinci) > 100
    share_fans = len(davinci & others) / len(davinci)
    base = len(others) / users
    assert share_fans > 2 * base, (share_fans, base)
    # ...and those who liked The Da Vinci Code rate the other Dan Brown novels higher.
    liked = set(
        ratings.filter((pl.col("book_id") == 26) & (pl.col("rating") >= 4))["user_id"].to_list()
    )
    other_ratings = ratings.filter(
        pl.col("book_id").is_in(list(DAN_BROWN.values())) & (pl.col("book_id") != 26)
    )
    other_ratings = other_ratings.filter(pl.col("user_id").is_in(list(davinci)))
    by_liking = other_ratings.group_by(pl.col("user_id").is_in(list(liked)).alias("liked")).agg(
        pl.col("rating").mean()
    )
    means = dict(zip(by_liking["liked"].to_list(), by_liking["rating"].to_list(), strict=True))
    assert means[True] > means[False] + 0.4, means
    # Not only because generous users rate everything higher: relative to each user's own mean,
    # liking The Da Vinci Code goes with liking the other Dan Brown novels.
    resid = ratings.with_columns(
        (pl.col("rating") - pl.col("rating").mean().over("user_id")).alias("resid")
    )
    on_davinci = resid.filter(pl.col("book_id") == 26).select(
        "user_id", pl.col("resid").alias("davinci")
    )
    on_others = resid.filter(
        pl.col("book_id").is_in(list(DAN_BROWN.values())) & (pl.col("book_id") != 26)
    )
    both = on_davinci.join(
        on_others.group_by("user_id").agg(pl.col("resid").mean().alias("others")), on="user_id"
    )
    assert len(both) > 100
    assert np.corrcoef(both["davinci"], both["others"])[0, 1] > 0.15


def test_goodbooks_series_books_are_rated_together(goodbooks: tuple[Path, dict[str, int]]) -> None:
    """Not just Dan Brown: for every series, raters of one volume rate the others far more often."""
    dest, _ = goodbooks
    ratings = read_ints(dest / "ratings.csv")
    books = books_table(dest / "books.csv").with_columns(
        pl.col("title").map_elements(_series_of, return_dtype=pl.String).alias("series")
    )
    raters = {b: s for b, s in ratings.group_by("book_id").agg(pl.col("user_id")).iter_rows()}
    users = ratings["user_id"].n_unique()
    lifts = []
    for _, group in books.filter(pl.col("series").is_not_null()).group_by("series"):
        ids = [b for b in group["book_id"].to_list() if len(raters.get(b, [])) >= 30]
        for a, b in pairwise(ids):
            ra, rb = set(raters[a]), set(raters[b])
            lifts.append(len(ra & rb) / len(ra) / (len(rb) / users))
    assert len(lifts) > 30
    assert np.median(lifts) > 2.0


def test_goodbooks_same_seed_same_bytes_other_seed_differs(tmp_path: Path) -> None:
    args = dict(n_ratings=20_000, n_users=500, n_books=300, progress=False, **sample_inputs())
    generate_goodbooks(tmp_path / "a", seed=3, **args)
    generate_goodbooks(tmp_path / "b", seed=3, **args)
    generate_goodbooks(tmp_path / "c", seed=4, **args)
    for name in ("ratings.csv", "to_read.csv", "books.csv", "tags.csv", "book_tags.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert (tmp_path / "a" / "ratings.csv").read_bytes() != (
        tmp_path / "c" / "ratings.csv"
    ).read_bytes()
    assert (tmp_path / "a" / "to_read.csv").read_bytes() != (
        tmp_path / "c" / "to_read.csv"
    ).read_bytes()


def test_goodbooks_n_books_keeps_the_most_rated_books_and_their_tags(tmp_path: Path) -> None:
    counts = generate_goodbooks(
        tmp_path,
        n_ratings=5_000,
        n_users=200,
        n_books=50,
        seed=1,
        progress=False,
        **sample_inputs(),
    )
    source = books_table(SAMPLE / "books.csv.gz")
    top = set(
        source.sort(["ratings_count", "book_id"], descending=[True, False])
        .head(50)["book_id"]
        .to_list()
    )
    books = books_table(tmp_path / "books.csv")
    assert set(books["book_id"].to_list()) == top and counts["books.csv"] == 50
    assert set(read_ints(tmp_path / "ratings.csv")["book_id"].to_list()) <= top
    book_tags = read_ints(tmp_path / "book_tags.csv")
    assert set(book_tags["goodreads_book_id"].to_list()) <= set(
        books["goodreads_book_id"].to_list()
    )
    assert book_tags.height == counts["book_tags.csv"] > 0
    tags = pl.read_csv(tmp_path / "tags.csv", infer_schema=False)
    assert set(tags["tag_id"].to_list()) == {str(t) for t in book_tags["tag_id"].to_list()}
    # The kept lines are the source's own bytes.
    source_lines = set(gzip.decompress((SAMPLE / "books.csv.gz").read_bytes()).splitlines())
    assert set((tmp_path / "books.csv").read_bytes().splitlines()) <= source_lines


def test_goodbooks_without_tags_still_works(tmp_path: Path) -> None:
    counts = generate_goodbooks(
        tmp_path,
        books_csv=SAMPLE / "books.csv.gz",
        n_ratings=3_000,
        n_users=100,
        n_books=80,
        progress=False,
    )
    assert counts == {
        "ratings.csv": 3_000,
        "to_read.csv": round(912_705 / 5_976_479 * 3_000),
        "books.csv": 80,
    }
    assert sorted(p.name for p in tmp_path.iterdir()) == ["books.csv", "ratings.csv", "to_read.csv"]


def test_goodbooks_rejects_impossible_sizes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="do not fit"):
        generate_goodbooks(
            tmp_path, books_csv=SAMPLE / "books.csv.gz", n_ratings=1_001, n_users=1, progress=False
        )
    with pytest.raises(ValueError, match="n_books"):
        generate_goodbooks(
            tmp_path, books_csv=SAMPLE / "books.csv.gz", n_books=1_001, progress=False
        )
    with pytest.raises(ValueError, match="seed"):
        generate_goodbooks(tmp_path, books_csv=SAMPLE / "books.csv.gz", seed=-1, progress=False)


def test_generate_command_errors_are_one_line_naming_the_file_or_sizes(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    from shelfwise.cli import main

    monkeypatch.chdir(
        tmp_path
    )  # the default books.csv comes from the checkout, not the working directory
    main(
        [
            "-q",
            "generate",
            "goodbooks",
            "--dest",
            "ok",
            "--ratings",
            "3000",
            "--users",
            "100",
            "--books",
            "80",
        ]
    )
    assert (tmp_path / "ok" / "ratings.csv").exists()

    books = gzip.decompress((SAMPLE / "books.csv.gz").read_bytes())
    header, first, rest = books.split(b"\n", 2)
    (tmp_path / "bytes.csv").write_bytes(header + b"\n" + first + b"\xff\n" + rest)
    (tmp_path / "ids.csv").write_bytes(
        header + b"\n" + first + b"\n" + b"two" + rest[rest.index(b",") :]
    )
    cases = [
        (
            ["--ratings", "10", "--users", "1000"],
            "error: 10 ratings cannot give each of 1,000 users one",
        ),
        (
            ["--books-csv", str(tmp_path / "bytes.csv")],
            f"error: {tmp_path / 'bytes.csv'}: not UTF-8 text",
        ),
        (
            ["--books-csv", str(tmp_path / "ids.csv")],
            f"error: {tmp_path / 'ids.csv'}: line 3: column book_id: 'two' is not a number",
        ),
    ]
    for args, message in cases:
        capsys.readouterr()
        with pytest.raises(SystemExit) as exc:
            main(
                [
                    "-q",
                    "generate",
                    "goodbooks",
                    "--dest",
                    "bad",
                    "--ratings",
                    "3000",
                    "--users",
                    "100",
                    *args,
                ]
            )
        err = capsys.readouterr().err
        assert exc.value.code == 1, err
        assert err.startswith(message) and err.count("\n") == 1, err


@pytest.mark.realdata
@pytest.mark.slow
@pytest.mark.skipif(
    not (REAL / "books.csv.gz").is_file(), reason="../shared/data/goodbooks-10k is absent"
)
def test_goodbooks_over_all_10000_real_books(tmp_path: Path) -> None:
    counts = generate_goodbooks(
        tmp_path,
        books_csv=REAL / "books.csv.gz",
        book_tags_csv=REAL / "book_tags_book_subset.csv.gz",
        n_ratings=200_000,
        n_users=2_000,
        seed=11,
        progress=False,
    )
    assert counts["books.csv"] == 10_000 and counts["book_tags.csv"] == 729_994
    ratings = read_ints(tmp_path / "ratings.csv")
    per_book = ratings.group_by("book_id").len()
    books = (
        books_table(tmp_path / "books.csv").join(per_book, on="book_id", how="left").fill_null(0)
    )
    assert stats.spearmanr(books["ratings_count"], books["len"]).statistic > 0.7
    most_rated = books.sort("len")["title"][-1]
    assert most_rated in {
        "The Hunger Games (The Hunger Games, #1)",
        "Harry Potter and the Sorcerer's Stone (Harry Potter, #1)",
    }
    davinci = rate_of(ratings, DAN_BROWN["The Da Vinci Code"])
    others = set().union(
        *(rate_of(ratings, b) for t, b in DAN_BROWN.items() if t != "The Da Vinci Code")
    )
    assert len(davinci & others) / len(davinci) > 1.8 * len(others) / ratings["user_id"].n_unique()


def test_series_parsed_from_titles() -> None:
    assert _series_of("Angels & Demons  (Robert Langdon, #1)") == "Robert Langdon"
    assert (
        _series_of("Angels and Demons / The Da Vinci Code (Robert Langdon, #1-2)")
        == "Robert Langdon"
    )
    title = "A Dance with Dragons: After the Feast (A Song of Ice and Fire #5, Part 2 of 2)"
    assert _series_of(title) == "A Song of Ice and Fire"
    assert _series_of("Raising Steam (Discworld, #40, Moist von Lipwig #3 )") == "Discworld"
    assert _series_of("Deception Point") is None
    assert _series_of("#GIRLBOSS") is None


@settings(max_examples=200, deadline=None)
@given(
    weights=st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=40),
    lo=st.integers(0, 5),
    cap_extra=st.integers(0, 30),
    fill=st.floats(0, 1),
)
def test_allocate_is_exact_and_within_bounds(
    weights: list[float], lo: int, cap_extra: int, fill: float
) -> None:
    n = len(weights)
    cap = lo + cap_extra
    total = lo * n + round(fill * cap_extra * n)
    out = _allocate(total, np.array(weights), lo, cap)
    assert out.sum() == total
    assert out.min() >= lo and out.max() <= cap


# --------------------------------------------------------------------------------------------------
# UCSD
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ucsd(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    dest = tmp_path_factory.mktemp("ucsd")
    return dest, generate_ucsd(dest, n_interactions=60_000, seed=5, progress=False)


def test_ucsd_files_and_headers(ucsd: tuple[Path, dict[str, int]]) -> None:
    dest, counts = ucsd
    assert (
        sorted(counts)
        == sorted(p.name for p in dest.iterdir())
        == [
            "book_id_map.csv",
            "goodreads_book_authors.json.gz",
            "goodreads_books.json.gz",
            "goodreads_interactions.csv",
            "user_id_map.csv",
        ]
    )
    headers = {
        name: (dest / name).read_text().split("\n", 1)[0]
        for name in counts
        if name.endswith(".csv")
    }
    assert headers == {
        "goodreads_interactions.csv": "user_id,book_id,is_read,rating,is_reviewed",
        "user_id_map.csv": "user_id_csv,user_id",
        "book_id_map.csv": "book_id_csv,book_id",
    }


def test_ucsd_interactions_values(ucsd: tuple[Path, dict[str, int]]) -> None:
    dest, counts = ucsd
    con = duckdb.connect()
    types = (
        "{'user_id': 'BIGINT', 'book_id': 'BIGINT', 'is_read': 'INT', 'rating': 'INT', "
        "'is_reviewed': 'INT'}"
    )
    con.execute(
        "create table i as select * from read_csv(?, header = true, auto_detect = false, "
        "strict_mode = true, "
        f"columns = {types})",
        [str(dest / "goodreads_interactions.csv")],
    )
    row = con.execute(
        """select count(*), min(rating), max(rating), avg((rating = 0)::int),
                  count(*) filter (where rating > 0 and is_read = 0),
                  count(*) filter (where is_reviewed = 1 and is_read = 0),
                  avg(is_reviewed), min(is_read), max(is_read),
                  count(*) - count(distinct (user_id, book_id))
           from i"""
    ).fetchall()[0]
    n, rmin, rmax, unrated, rated_unread, reviewed_unread, reviewed, read_min, read_max, dups = row
    assert n == counts["goodreads_interactions.csv"] == 60_000
    assert (rmin, rmax) == (0, 5)
    assert 0.4 < unrated < 0.65  # about half shelved without a rating
    assert rated_unread == 0 and reviewed_unread == 0
    assert 0 < reviewed < 0.15 and (read_min, read_max) == (0, 1)
    assert dups == 0
    stars = dict(
        con.execute("select rating, count(*) from i where rating > 0 group by 1").fetchall()
    )
    assert stars[4] > stars[3] > stars[2] > stars[1] > 0 and stars[5] > stars[2]
    # Ordered by user; dense ids; every id is in its map.
    users = con.execute("select user_id from i").fetchnumpy()["user_id"]
    assert (np.diff(users) >= 0).all()
    user_map = read_ints_ucsd(dest / "user_id_map.csv")
    book_map = pl.read_csv(dest / "book_id_map.csv")
    assert user_map["user_id_csv"].to_list() == list(range(counts["user_id_map.csv"]))
    assert book_map["book_id_csv"].to_list() == list(range(counts["book_id_map.csv"]))
    assert set(users.tolist()) <= set(user_map["user_id_csv"].to_list())
    books = con.execute("select distinct book_id from i").fetchnumpy()["book_id"]
    assert set(books.tolist()) <= set(book_map["book_id_csv"].to_list())


def read_ints_ucsd(path: Path) -> pl.DataFrame:
    return pl.read_csv(path, schema_overrides={"user_id": pl.String})


def test_ucsd_maps(ucsd: tuple[Path, dict[str, int]]) -> None:
    dest, _ = ucsd
    user_map = read_ints_ucsd(dest / "user_id_map.csv")
    assert all(re.fullmatch(r"[0-9a-f]{32}", u) for u in user_map["user_id"].to_list())
    assert user_map["user_id"].n_unique() == user_map.height
    book_map = pl.read_csv(dest / "book_id_map.csv")
    assert book_map["book_id"].dtype.is_integer() and book_map["book_id"].min() > 0
    assert book_map["book_id"].n_unique() == book_map.height


def test_ucsd_books_json(ucsd: tuple[Path, dict[str, int]]) -> None:
    dest, counts = ucsd
    lines = gzip.decompress((dest / "goodreads_books.json.gz").read_bytes()).decode().splitlines()
    books = [json.loads(line) for line in lines]
    assert len(books) == counts["goodreads_books.json.gz"] == counts["book_id_map.csv"]
    fields = [
        "book_id",
        "work_id",
        "title",
        "title_without_series",
        "authors",
        "publication_year",
        "average_rating",
        "ratings_count",
        "image_url",
        "url",
        "popular_shelves",
    ]
    author_ids = {
        json.loads(line)["author_id"]
        for line in gzip.decompress((dest / "goodreads_book_authors.json.gz").read_bytes())
        .decode()
        .splitlines()
    }
    for book in books:
        assert list(book) == fields
        assert all(
            isinstance(book[f], str) for f in fields if f not in ("authors", "popular_shelves")
        )
        assert book["authors"]
        assert all(
            set(a) == {"author_id", "role"} and a["author_id"] in author_ids
            for a in book["authors"]
        )
        assert all(
            set(s) == {"count", "name"} and s["count"].isdigit() for s in book["popular_shelves"]
        )
        counts_desc = [int(s["count"]) for s in book["popular_shelves"]]
        assert counts_desc == sorted(counts_desc, reverse=True)
        assert book["url"] == f"https://www.goodreads.com/book/show/{book['book_id']}"
        assert book["title"].startswith(book["title_without_series"])
        assert 1 <= float(book["average_rating"]) <= 5
    map_ids = set(pl.read_csv(dest / "book_id_map.csv")["book_id"].to_list())
    assert {int(b["book_id"]) for b in books} == map_ids
    assert any("#" in b["title"] for b in books)  # series exist


def test_ucsd_book_metadata_matches_interactions(ucsd: tuple[Path, dict[str, int]]) -> None:
    dest, _ = ucsd
    inter = pl.read_csv(dest / "goodreads_interactions.csv")
    book_map = pl.read_csv(dest / "book_id_map.csv")
    rated = (
        inter.filter(pl.col("rating") > 0)
        .group_by("book_id")
        .agg(pl.len().alias("n"), pl.col("rating").mean())
    )
    rated = rated.join(book_map, left_on="book_id", right_on="book_id_csv").rename(
        {"book_id_right": "gr_id"}
    )
    meta = pl.read_ndjson(dest / "goodreads_books.json.gz").select(
        pl.col("book_id").cast(pl.Int64).alias("gr_id"),
        pl.col("ratings_count").cast(pl.Int64),
        pl.col("average_rating").cast(pl.Float64),
    )
    joined = rated.join(meta, on="gr_id")
    assert joined.height == rated.height
    assert (joined["ratings_count"] >= joined["n"]).all()
    assert (joined["average_rating"] - joined["rating"]).abs().max() <= 0.005 + 1e-9


def test_ucsd_popularity_and_activity_are_long_tailed(ucsd: tuple[Path, dict[str, int]]) -> None:
    dest, _ = ucsd
    inter = pl.read_csv(dest / "goodreads_interactions.csv")
    per_book = inter.group_by("book_id").len()["len"]
    per_user = inter.group_by("user_id").len()["len"]
    assert per_book.max() > 10 * per_book.median()
    assert per_user.max() > 10 * per_user.median()


def test_ucsd_same_seed_same_bytes_whatever_the_chunk_size(tmp_path: Path) -> None:
    generate_ucsd(tmp_path / "a", n_interactions=30_000, seed=9, progress=False)
    generate_ucsd(tmp_path / "b", n_interactions=30_000, seed=9, chunk_rows=7_000, progress=False)
    generate_ucsd(tmp_path / "c", n_interactions=30_000, seed=10, progress=False)
    for path in sorted((tmp_path / "a").iterdir()):
        assert path.read_bytes() == (tmp_path / "b" / path.name).read_bytes(), path.name
        assert path.read_bytes() != (tmp_path / "c" / path.name).read_bytes(), path.name


def test_ucsd_sizes_scale_and_can_be_given(tmp_path: Path) -> None:
    counts = generate_ucsd(
        tmp_path / "given", n_interactions=5_000, n_users=50, n_books=400, progress=False
    )
    sizes = (
        counts["goodreads_interactions.csv"],
        counts["user_id_map.csv"],
        counts["book_id_map.csv"],
    )
    assert sizes == (5_000, 50, 400)
    inter = pl.read_csv(tmp_path / "given" / "goodreads_interactions.csv")
    assert inter["user_id"].max() < 50 and inter["book_id"].max() < 400
    # Proportional to the real dump (876,145 users, 2,360,650 books per 228,648,342 rows) ...
    assert _ucsd_sizes(228_648_342, None, None) == (876_145, 2_360_650)
    scale = 2_000_000 / 228_648_342
    assert _ucsd_sizes(2_000_000, None, None) == (round(876_145 * scale), round(2_360_650 * scale))
    # ... unless that would be denser than 2 % (a tiny sample's users could not find enough books).
    users, books = _ucsd_sizes(20_000, None, None)
    assert 20_000 / (users * books) <= 0.02 and users > round(876_145 * 20_000 / 228_648_342)
    counts = generate_ucsd(tmp_path / "tiny", n_interactions=20_000, progress=False)
    assert (counts["user_id_map.csv"], counts["book_id_map.csv"]) == (users, books)
    with pytest.raises(ValueError):
        generate_ucsd(tmp_path / "bad", n_interactions=100, n_users=10, n_books=4, progress=False)
