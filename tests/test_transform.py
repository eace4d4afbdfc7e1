"""The SQL models and their runner: run order, headers, bound parameters, and known answers on a few
rows."""

from __future__ import annotations

import random
import re
from collections import Counter

import duckdb
import pytest
from helpers import rows
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from base.config import LoadConfig, TransformConfig
from base.errors import ShelfwiseError
from warehouse.catalog import CHECKS, MODELS, TABLES, read_model, sql_dir
from warehouse.db import connect
from warehouse.load import load_dataset
from warehouse.runner import _params, run_transforms
from warehouse.sources import all_raw_files

MODEL_SCHEMAS = ("staging", "core", "matrix")
RELATION = re.compile(r"\b(raw|staging|core|matrix)\.([a-z_][a-z0-9_]*)\b")
DOLLAR = re.compile(r"\$(\w*)")


def code_of(sql: str) -> str:
    """The SQL without comments and string literals (what the engine reads as identifiers and
    params)."""
    no_comments = re.sub(r"--[^\n]*", "", sql)
    return re.sub(r"'(?:[^']|'')*'", "''", no_comments)


def header_of(sql: str) -> list[str]:
    lines = []
    for line in sql.splitlines():
        if not line.startswith("--"):
            break
        lines.append(line[2:].strip())
    return lines


def header_field(sql: str, field: str) -> str | None:
    for line in header_of(sql):
        if line.lower().startswith(f"{field}:"):
            return line.split(":", 1)[1].strip()
    return None


def references(sql: str) -> set[str]:
    return {f"{schema}.{table}" for schema, table in RELATION.findall(code_of(sql))}


def insert_ratings(con: duckdb.DuckDBPyConnection, ratings: list[tuple[int, int, int]]) -> None:
    """Goodbooks ratings (user_id, book_id, rating) in this source order; no books.csv, so book_key
    = -book_id."""
    if ratings:
        con.executemany("insert into raw.goodbooks_ratings values (?, ?, ?)", ratings)


def transform(con: duckdb.DuckDBPyConnection, **kw: object) -> None:
    run_transforms(con, TransformConfig(**kw))  # type: ignore[arg-type]


def matrix_ratings(con: duckdb.DuckDBPyConnection) -> set[tuple[int, int]]:
    """(user_key, book_key) of every matrix rating."""
    return set(
        rows(
            con,
            """select u.user_key, b.book_key from matrix.ratings r
                            join matrix.users u using (user_idx)
                            join matrix.books b using (book_idx)""",
        )
    )


def contents(
    con: duckdb.DuckDBPyConnection, schemas: tuple[str, ...] = ("core", "matrix")
) -> dict[str, list]:
    tables = rows(
        con,
        "select table_schema, table_name from information_schema.tables "
        "where table_schema in (select unnest(?)) and table_type = 'BASE TABLE' order by all",
        [list(schemas)],
    )
    return {f"{s}.{t}": rows(con, f"select * from {s}.{t} order by all") for s, t in tables}


# --------------------------------------------------------------------------- run order and SQL
# hygiene


def model_files(*folders: str) -> list[str]:
    return sorted(
        str(p.relative_to(sql_dir()).with_suffix(""))
        for f in folders
        for p in (sql_dir() / f).glob("*.sql")
    )


def test_models_run_order_lists_exactly_the_model_files_on_disk():
    assert len(MODELS) == len(set(MODELS))
    # The fixed tables' DDL (catalog.TABLES, e.g. matrix/transform_log) shares their folders.
    assert sorted(MODELS) == sorted(set(model_files(*MODEL_SCHEMAS)) - set(TABLES))
    assert [m.split("/")[0] for m in MODELS] == sorted(
        (m.split("/")[0] for m in MODELS), key=MODEL_SCHEMAS.index
    ), "staging, then core, then matrix"


def test_checks_list_exactly_the_check_files_on_disk():
    assert len(CHECKS) == len(set(CHECKS))
    assert sorted(CHECKS) == model_files("checks")
    # Every other file is a fixed table or a main view (tests/test_sql_files.py).
    folders = {p.parent.name for p in sql_dir().rglob("*.sql")}
    assert folders == {*MODEL_SCHEMAS, "checks", "raw", "models", "main", "readers", "exports"}


def test_every_relation_a_model_reads_is_built_by_an_earlier_model_or_is_raw():
    raw_tables = {f"raw.{spec.table}" for spec in all_raw_files()} | {"raw.load_log", "raw.rejects"}
    built: list[str] = []
    for name in MODELS:
        model = read_model(name)
        for ref in sorted(references(model.sql)):
            if ref.startswith("raw."):
                assert ref in raw_tables, (name, ref)
            else:
                assert ref in built, f"{name} reads {ref}, which no earlier model builds"
        built.append(model.relation)
    assert len(set(built)) == len(built) - 1, (
        "only kcore_step rebuilds a relation (matrix.filtered_ratings)"
    )


def test_checks_read_only_relations_the_models_build():
    built = {read_model(name).relation for name in MODELS}
    for name in CHECKS:
        refs = references(read_model(name).sql)
        assert refs and refs <= built, (name, refs - built)


@pytest.mark.parametrize("name", MODELS)
def test_model_opens_with_a_header_naming_grain_upstream_and_parameters(name):
    sql = read_model(name).sql
    header = header_of(sql)
    assert header and len(header[0]) > 20, "first line: what the model is, in a sentence"
    grain, upstream, parameters = (
        header_field(sql, f) for f in ("grain", "upstream", "parameters")
    )
    assert grain and upstream and parameters is not None, header
    named = set(re.findall(r"[a-z_]+(?:\.[a-z_]+)?", upstream))
    for ref in references(sql):
        assert ref in named or ref.split(".")[1] in named, (
            f"{name}: upstream line does not name {ref}"
        )
    declared = set(DOLLAR.findall(parameters))
    assert declared == set(DOLLAR.findall(code_of(sql))), f"{name}: parameters line {parameters!r}"
    assert (parameters == "none") == (not declared)


@pytest.mark.parametrize("name", MODELS + CHECKS)
def test_sql_takes_values_only_as_bound_dollar_parameters(name):
    model = read_model(name)
    code = code_of(model.sql)
    assert not re.search(r"\{\w*\}|%s|%\(|\?", code), (
        "values are bound as $name, never formatted in"
    )
    used = DOLLAR.findall(code)
    assert set(used) <= set(_params(TransformConfig())), used
    assert all(used), "a bare $ or a positional $1"
    if model.materialized == "view" or name.startswith("checks/"):
        assert not used, "views and checks cannot take bound parameters"
    assert ";" not in code.strip().rstrip(";"), "one statement per file"


def test_a_quote_in_a_parameter_is_a_value_not_sql(tmp_db):
    insert_ratings(tmp_db, [(1, 1, 5)])

    with pytest.raises(ShelfwiseError, match="no goodbooks' or 'x'='x ratings survive"):
        run_transforms(
            tmp_db,
            TransformConfig(source="goodbooks' or 'x'='x", min_user_ratings=1, min_book_ratings=1),
        )  # type: ignore[arg-type]


# --------------------------------------------------------------------------- filters


def test_filters_keep_exactly_n_ratings_and_drop_n_minus_1(tmp_db):
    insert_ratings(
        tmp_db,
        [
            (1, 1, 5),
            (1, 3, 4),
            (2, 1, 3),
            (2, 3, 2),
            (3, 1, 1),
            (3, 2, 5),
            (4, 2, 4),
            (4, 3, 3),
        ],
    )  # books 1 and 3 have 3 ratings, book 2 has 2

    transform(tmp_db, min_user_ratings=2, min_book_ratings=3)

    # Book 2 (2 < 3) goes first; then users 3 and 4 keep one rating each (1 < 2) and go.
    assert matrix_ratings(tmp_db) == {(1, -1), (1, -3), (2, -1), (2, -3)}
    assert rows(tmp_db, "select user_key, n_ratings from matrix.users order by user_idx") == [
        (1, 2),
        (2, 2),
    ]
    # One pass: the book filter counts ratings before users are dropped, so books may end below it.
    assert rows(tmp_db, "select book_key, n_ratings from matrix.books order by book_idx") == [
        (-3, 2),
        (-1, 2),
    ]


def test_filters_of_1_keep_every_rated_interaction(tmp_db):
    insert_ratings(tmp_db, [(1, 1, 5), (2, 2, 1), (3, 1, 2)])

    transform(tmp_db, min_user_ratings=1, min_book_ratings=1)

    assert matrix_ratings(tmp_db) == {(1, -1), (2, -2), (3, -1)}


KCORE_CASE = [
    (1, 1, 5),
    (1, 2, 4),  # A
    (2, 1, 3),
    (2, 2, 2),  # B
    (3, 3, 1),  # C: one rating, dropped by the first pass
    (4, 3, 5),
    (4, 1, 4),  # D: book 3 falls to one rating once C goes, then D falls to one
]


def test_one_pass_leaves_books_below_the_threshold_that_kcore_removes(tmp_db):
    insert_ratings(tmp_db, KCORE_CASE)

    transform(tmp_db, min_user_ratings=2, min_book_ratings=2)
    one_pass = matrix_ratings(tmp_db)
    transform(tmp_db, min_user_ratings=2, min_book_ratings=2, kcore=True)
    kcore = matrix_ratings(tmp_db)

    assert one_pass == {(1, -1), (1, -2), (2, -1), (2, -2), (4, -3), (4, -1)}
    assert rows(tmp_db, "select count(*) from matrix.filtered_ratings") == [(4,)]
    assert kcore == {(1, -1), (1, -2), (2, -1), (2, -2)}
    assert (
        min(Counter(u for u, _ in kcore).values()) >= 2
        and min(Counter(b for _, b in kcore).values()) >= 2
    )


# --------------------------------------------------------------------------- indices


def test_indices_are_exactly_0_to_n_minus_1_in_key_order(tmp_db):
    # Books 1 and 2 have work ids in books.csv; 7 does not, so its key is -7.
    tmp_db.execute(
        "insert into raw.goodbooks_books (book_id, goodreads_book_id, work_id, title) "
        "values ('1', '11', '900', 'B'), ('2', '12', '300', 'A')"
    )
    insert_ratings(tmp_db, [(30, 1, 5), (10, 2, 4), (20, 7, 3), (10, 1, 2), (99, 7, 1)])

    transform(tmp_db, min_user_ratings=1, min_book_ratings=1)

    assert rows(tmp_db, "select user_idx, user_key from matrix.users order by user_idx") == [
        (0, 10),
        (1, 20),
        (2, 30),
        (3, 99),
    ]
    assert rows(tmp_db, "select book_idx, book_key from matrix.books order by book_idx") == [
        (0, -7),
        (1, 300),
        (2, 900),
    ]
    assert rows(tmp_db, "select user_idx, book_idx, rating from matrix.ratings order by all") == [
        (0, 1, 4),
        (0, 2, 2),
        (1, 0, 3),
        (2, 2, 5),
        (3, 0, 1),
    ]


def test_to_read_is_mapped_onto_matrix_indices(tmp_db):
    insert_ratings(tmp_db, [(1, 1, 5), (2, 2, 4), (2, 1, 3)])
    tmp_db.execute("insert into raw.goodbooks_to_read values (1, 2), (1, 2), (3, 1), (2, 9)")

    transform(tmp_db, min_user_ratings=1, min_book_ratings=1)

    # user 3 and book 9 are not in the matrix; (1, 2) is listed twice.
    assert rows(tmp_db, "select user_idx, book_idx from matrix.to_read") == [(0, 0)]


# --------------------------------------------------------------------------- splits


def grid_ratings(con: duckdb.DuckDBPyConnection, n_users: int = 200, n_books: int = 100) -> int:
    con.execute(
        "insert into raw.goodbooks_ratings select u, b, 1 + (u * 7 + b) % 5 "
        "from range(?) t(u), range(?) s(b)",
        [n_users, n_books],
    )
    return n_users * n_books


def split_column(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [s for (s,) in rows(con, "select split from matrix.ratings order by user_idx, book_idx")]


def test_random_split_is_deterministic_for_a_seed_and_differs_across_seeds(tmp_db):
    grid_ratings(tmp_db)

    transform(tmp_db, min_user_ratings=1, min_book_ratings=1, seed=7)
    first = split_column(tmp_db)
    transform(tmp_db, min_user_ratings=1, min_book_ratings=1, seed=7)
    again = split_column(tmp_db)
    transform(tmp_db, min_user_ratings=1, min_book_ratings=1, seed=8)
    other = split_column(tmp_db)

    assert first == again
    assert len(first) == len(other) == 20_000
    assert (
        sum(a != b for a, b in zip(first, other, strict=True)) > 2_000
    )  # independent splits differ in ~32% of cells


@pytest.mark.parametrize("fraction", [0.1, 0.2, 0.5])
def test_random_split_test_share_is_close_to_test_fraction(tmp_db, fraction):
    n = grid_ratings(tmp_db)

    transform(tmp_db, min_user_ratings=1, min_book_ratings=1, test_fraction=fraction)

    [(n_test,)] = rows(tmp_db, "select count(*) from matrix.ratings where split = 'test'")
    assert abs(n_test / n - fraction) < 0.015  # > 4 binomial standard deviations at n = 20,000


@pytest.mark.parametrize("split", ["random", "temporal"])
def test_test_fraction_0_puts_every_rating_in_train(tmp_db, split):
    grid_ratings(tmp_db, 20, 10)

    transform(tmp_db, min_user_ratings=1, min_book_ratings=1, test_fraction=0.0, split=split)

    assert rows(tmp_db, "select split, count(*) from matrix.ratings group by split") == [
        ("train", 200)
    ]


@pytest.mark.parametrize("split", ["random", "temporal"])
def test_train_and_test_partition_the_filtered_ratings(tmp_db, split):
    grid_ratings(tmp_db, 60, 40)
    tmp_db.execute(
        "delete from raw.goodbooks_ratings where (user_id * 13 + book_id) % 3 = 0"
    )  # uneven activity

    transform(tmp_db, min_user_ratings=20, min_book_ratings=30, split=split)

    filtered = rows(
        tmp_db, "select user_key, book_key, rating from matrix.filtered_ratings order by all"
    )
    in_matrix = rows(
        tmp_db,
        """select u.user_key, b.book_key, r.rating from matrix.ratings r
                                join matrix.users u using (user_idx)
                                join matrix.books b using (book_idx)
                                order by all""",
    )
    assert filtered and in_matrix == filtered
    assert {s for (s,) in rows(tmp_db, "select distinct split from matrix.ratings")} == {
        "train",
        "test",
    }


def test_temporal_split_holds_out_each_users_latest_ratings_in_file_order(
    tmp_db, tmp_path, write_csv
):
    rng = random.Random(3)
    lines = [(u, b) for u in (1, 2, 3, 4) for b in rng.sample(range(1, 30), 10)] + [
        (5, b) for b in range(1, 8)
    ]
    rng.shuffle(lines)
    write_csv(
        tmp_path / "gb" / "ratings.csv",
        "user_id,book_id,rating\n" + "".join(f"{u},{b},{(u + b) % 5 + 1}\n" for u, b in lines),
    )
    load_dataset(tmp_db, LoadConfig("goodbooks", tmp_path / "gb"))

    transform(tmp_db, min_user_ratings=1, min_book_ratings=1, split="temporal", test_fraction=0.3)

    expected = set()
    for user, n_test in (
        (1, 3),
        (2, 3),
        (3, 3),
        (4, 3),
        (5, 2),
    ):  # round(0.3 * 10) = 3, round(0.3 * 7) = 2
        latest = [(u, b) for u, b in lines if u == user][-n_test:]
        expected |= {(u, -b) for u, b in latest}
    test = set(
        rows(
            tmp_db,
            """select u.user_key, b.book_key from matrix.ratings r
                               join matrix.users u using (user_idx)
                               join matrix.books b using (book_idx) where split = 'test'""",
        )
    )
    assert test == expected


# --------------------------------------------------------------------------- properties


def reference_matrix(
    ratings: set[tuple[int, int]], min_user: int, min_book: int, kcore: bool
) -> set[tuple[int, int]]:
    """The documented filter in plain Python: books first, then users, one pass (or repeated to a
    fixed point)."""
    book_n = Counter(b for _, b in ratings)
    kept = {(u, b) for u, b in ratings if book_n[b] >= min_book}
    user_n = Counter(u for u, _ in kept)
    kept = {(u, b) for u, b in kept if user_n[u] >= min_user}
    while kcore:
        user_n, book_n = Counter(u for u, _ in kept), Counter(b for _, b in kept)
        pruned = {(u, b) for u, b in kept if user_n[u] >= min_user and book_n[b] >= min_book}
        if pruned == kept:
            break
        kept = pruned
    return kept


@pytest.fixture(scope="module")
def property_db():
    con = connect(":memory:")
    yield con
    con.close()


@pytest.mark.slow
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pairs=st.sets(st.tuples(st.integers(0, 6), st.integers(0, 6)), max_size=35),
    min_user=st.integers(1, 4),
    min_book=st.integers(1, 4),
    kcore=st.booleans(),
    split=st.sampled_from(["random", "temporal"]),
    seed=st.integers(0, 2**31 - 1),
)
def test_matrix_matches_the_documented_filters_with_contiguous_indices_and_a_partition(
    property_db, pairs, min_user, min_book, kcore, split, seed
):
    con = property_db
    con.execute("delete from raw.goodbooks_ratings")
    ordered = sorted(pairs, key=lambda p: (p[0] * 31 + p[1] * 17) % 11)
    insert_ratings(con, [(u, b, (u + b) % 5 + 1) for u, b in ordered])
    expected = {(u, -b) for u, b in reference_matrix(set(pairs), min_user, min_book, kcore)}
    config = TransformConfig(
        min_user_ratings=min_user, min_book_ratings=min_book, kcore=kcore, split=split, seed=seed
    )

    if not expected:
        with pytest.raises(ShelfwiseError, match="no goodbooks ratings survive the filters"):
            run_transforms(con, config)
        return
    run_transforms(con, config)

    got = matrix_ratings(con)
    assert got == expected
    users = rows(con, "select user_idx, user_key from matrix.users order by user_key")
    books = rows(con, "select book_idx, book_key from matrix.books order by book_key")
    assert [i for i, _ in users] == list(range(len(users)))
    assert [i for i, _ in books] == list(range(len(books)))
    assert (
        min(Counter(u for u, _ in got).values()) >= min_user
    )  # holds in the matrix with or without k-core
    source_book_n = Counter(-b for _, b in pairs)
    assert all(
        source_book_n[b] >= min_book for _, b in got
    )  # one pass: counted before users are dropped
    if kcore:
        assert min(Counter(b for _, b in got).values()) >= min_book
    splits = rows(con, "select split, count(*) from matrix.ratings group by split")
    assert {s for s, _ in splits} <= {"train", "test"} and sum(n for _, n in splits) == len(
        expected
    )
    assert rows(con, "select count(*) from matrix.filtered_ratings") == [(len(expected),)]


# --------------------------------------------------------------------------- all or nothing


@pytest.fixture
def built(tmp_db, goodbooks_dir):
    load_dataset(tmp_db, LoadConfig("goodbooks", goodbooks_dir))
    transform(tmp_db, min_user_ratings=1, min_book_ratings=1)
    return tmp_db


def test_a_failing_data_check_leaves_the_previous_matrix_unchanged(built):
    before = contents(built)
    assert before["matrix.ratings"] and before["matrix.transform_log"]
    # Two goodbooks books claiming one work: users who rated both would get one cell twice.
    built.execute("update raw.goodbooks_books set work_id = '501' where book_id = '2'")

    with pytest.raises(ShelfwiseError) as exc:
        transform(built, min_user_ratings=1, min_book_ratings=1)

    message = str(exc.value)
    assert (
        "data check checks/assert_matrix_ratings__unique_grain failed" in message
        and "duplicate cell" in message
    )
    assert "nothing was changed" in message and "\n" not in message
    assert contents(built) == before


def test_zero_surviving_ratings_leave_the_previous_matrix_unchanged(built):
    before = contents(built)

    with pytest.raises(ShelfwiseError) as exc:
        transform(built, min_user_ratings=50, min_book_ratings=1)

    message = str(exc.value)
    assert (
        "no goodbooks ratings survive the filters" in message and "min_user_ratings=50" in message
    )
    assert "lower the thresholds" in message
    assert contents(built) == before


def test_transform_without_any_ratings_is_a_clear_error(tmp_db):
    with pytest.raises(ShelfwiseError, match="no ucsd ratings survive the filters"):
        transform(tmp_db, source="ucsd", min_user_ratings=1, min_book_ratings=1)
    assert rows(tmp_db, "select count(*) from matrix.transform_log") == [(0,)]


def test_transform_log_records_every_model_of_a_run(built):
    logged = rows(built, "select transform_id, model from matrix.transform_log order by rowid")

    assert {t for t, _ in logged} == {1}
    assert [m for _, m in logged] == [
        read_model(name).relation for name in MODELS if name != "matrix/kcore_step"
    ]


# --------------------------------------------------------------------------- core.books


def insert_ucsd_book(
    con: duckdb.DuckDBPyConnection,
    book_id: str,
    work_id: str,
    title: str,
    ratings_count: str,
    shelves: str = "[]",
) -> None:
    con.execute(
        "insert into raw.ucsd_books "
        "(book_id, work_id, title, ratings_count, authors, popular_shelves) "
        "values (?, ?, ?, ?, '[]', ?)",
        [book_id, work_id, title, ratings_count, shelves],
    )


def test_core_books_has_one_row_per_book_key_with_goodbooks_winning_a_shared_work(tmp_db):
    tmp_db.execute(
        "insert into raw.goodbooks_books "
        "(book_id, goodreads_book_id, work_id, title, ratings_count) "
        "values ('1', '11', '501', 'GB One', '10'), ('2', '12', '502', 'GB Two', '20')"
    )
    insert_ucsd_book(tmp_db, "100", "501", "UCSD edition of 501", "9999")
    insert_ucsd_book(tmp_db, "101", "900", "Less rated edition", "50")
    insert_ucsd_book(tmp_db, "102", "900", "Most rated edition", "80")
    insert_ucsd_book(tmp_db, "103", "", "No work id", "1")
    insert_ratings(tmp_db, [(1, 1, 5)])

    transform(tmp_db, min_user_ratings=1, min_book_ratings=1)

    assert rows(
        tmp_db, "select book_key, source, source_book_id, title from core.books order by book_key"
    ) == [
        (-103, "ucsd", 103, "No work id"),
        (501, "goodbooks", 1, "GB One"),
        (502, "goodbooks", 2, "GB Two"),
        (900, "ucsd", 102, "Most rated edition"),
    ]


def test_top_tags_are_the_five_most_shelved_genre_tags(tmp_db, goodbooks_dir, write_csv):
    # Shelves named after an author of the catalogue, favourites and reading challenges say who or
    # why, not what: they are left out too.
    tags = [
        "to-read",
        "currently-reading",
        "favorites",
        "owned-books",
        "read-in-2015",
        "2015-reads",
        "books-i-own",
        "fantasy",
        "classics",
        "fiction",
        "magic",
        "young-adult",
        "adventure",
        "dragons",
        "author-2",
        "childhood-favorites",
        "rory-gilmore-reading-challenge",
        "first-reads",
    ]
    counts = [
        1000,
        900,
        800,
        700,
        600,
        590,
        580,
        500,
        400,
        390,
        300,
        200,
        100,
        50,
        450,
        440,
        430,
        420,
    ]
    write_csv(
        goodbooks_dir / "tags.csv",
        "tag_id,tag_name\n" + "".join(f"{i},{t}\n" for i, t in enumerate(tags)),
    )
    write_csv(
        goodbooks_dir / "book_tags.csv",
        "goodreads_book_id,tag_id,count\n"
        + "".join(f"1001,{i},{n}\n" for i, n in enumerate(counts))
        + "1002,13,5\n1002,12,5\n",
    )
    load_dataset(tmp_db, LoadConfig("goodbooks", goodbooks_dir))
    insert_ucsd_book(
        tmp_db,
        "200",
        "777",
        "UCSD",
        "1",
        '[{"count": "40", "name": "to-read"}, {"count": "9", "name": "Sci-Fi"}, '
        '{"count": "3", "name": "owned"}]',
    )

    transform(tmp_db, min_user_ratings=1, min_book_ratings=1)

    assert rows(tmp_db, "select book_key, top_tags, top_tag from core.books order by book_key") == [
        (501, ["fantasy", "classics", "magic", "young-adult", "adventure"], "fantasy"),
        (502, ["adventure", "dragons"], "adventure"),  # a tie goes to the name
        (503, [], None),
        (777, ["sci-fi"], "sci-fi"),
    ]


def test_ucsd_editions_of_one_work_collapse_to_the_users_strongest_signal(tmp_db):
    insert_ucsd_book(tmp_db, "100", "900", "Edition A", "5")
    insert_ucsd_book(tmp_db, "101", "900", "Edition B", "6")
    tmp_db.execute("insert into raw.ucsd_book_id_map values (0, 100), (1, 101), (2, 555)")
    tmp_db.execute(
        "insert into raw.ucsd_interactions values "
        "(7, 0, 1, 5, 0), (7, 1, 0, 3, 0), (8, 1, 0, 0, 0), (8, 0, 0, 0, 0), (9, 2, 1, 4, 1)"
    )

    transform(tmp_db, source="ucsd", min_user_ratings=1, min_book_ratings=1)

    assert rows(
        tmp_db, "select user_key, book_key, rating, is_read from core.ratings order by all"
    ) == [
        (7, 900, 5, True),  # rated 5 and 3 on two editions: the higher rating, read on either
        (8, 900, None, False),  # shelved both editions, rated neither
        (9, -555, 4, True),  # a book missing from goodreads_books keeps its own (negative) key
    ]
    assert rows(tmp_db, "select seq from core.ratings where user_key = 7") == [
        (1,)
    ]  # the later edition's row


# --------------------------------------------------------------------------- core.user_activity,
# core.book_activity


def test_activity_counts_every_source_before_the_filters_with_unrated_shelvings_apart(tmp_db):
    insert_ratings(tmp_db, [(1, 1, 5), (1, 2, 4), (2, 1, 5), (2, 2, 1), (3, 1, 3)])
    # UCSD user 1 is not goodbooks user 1; (user, book_csv, is_read, rating, is_reviewed), rating 0
    # = shelved only.
    tmp_db.execute(
        "insert into raw.ucsd_interactions values (1, 5, 1, 4, 0), (1, 6, 0, 0, 0), (4, 6, 0, 0, 0)"
    )

    transform(
        tmp_db, min_user_ratings=2, min_book_ratings=2
    )  # the filters cut user 3 from the matrix, not here

    assert rows(tmp_db, "select * from core.user_activity order by all") == [
        # source, user_key, n_ratings, n_interactions
        ("goodbooks", 1, 2, 2),
        ("goodbooks", 2, 2, 2),
        ("goodbooks", 3, 1, 1),
        ("ucsd", 1, 1, 2),
        ("ucsd", 4, 0, 1),
    ]
    assert rows(tmp_db, "select * from core.book_activity order by all") == [
        # source, book_key, n_ratings, n_interactions, ratings_1 .. ratings_5
        ("goodbooks", -2, 2, 2, 1, 0, 0, 1, 0),
        ("goodbooks", -1, 3, 3, 0, 0, 1, 0, 2),
        ("ucsd", -6, 0, 2, 0, 0, 0, 0, 0),
        ("ucsd", -5, 1, 1, 0, 0, 0, 1, 0),
    ]
    assert rows(tmp_db, "select count(*) from matrix.users") == [(2,)]
