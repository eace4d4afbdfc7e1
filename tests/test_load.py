"""Loading raw files: bad input stops with one clear line or goes to raw.rejects, and loads are all
or nothing."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import duckdb
import pytest
from helpers import rows

from base.config import LoadConfig, TransformConfig
from base.errors import BadInputError, ShelfwiseError
from warehouse.db import connect
from warehouse.load import FileReport, load_dataset
from warehouse.runner import run_transforms

RATINGS_HEADER = "user_id,book_id,rating"
UCSD_HEADER = "user_id,book_id,is_read,rating,is_reviewed"


def load(
    con: duckdb.DuckDBPyConnection,
    folder: Path,
    *,
    source: str = "goodbooks",
    max_reject_fraction: float = 0.01,
) -> dict[str, FileReport]:
    reports = load_dataset(con, LoadConfig(source, folder, max_reject_fraction=max_reject_fraction))  # type: ignore[arg-type]
    return {r.table: r for r in reports}


def rejects(con: duckdb.DuckDBPyConnection) -> list[tuple[int, str, str]]:
    return rows(con, "select line, raw_text, reason from raw.rejects order by line")


@pytest.fixture
def ratings_folder(tmp_path, write_csv):
    """``ratings_folder(body, name=..., header=...)``: a folder holding one ratings-shaped file."""

    def make(body: str, *, name: str = "ratings.csv", header: str = RATINGS_HEADER) -> Path:
        folder = tmp_path / "in"
        write_csv(folder / name, header + "\n" + body)
        return folder

    return make


def snapshot(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple]]:
    """Every raw table's full contents in storage order, load_log and rejects included."""
    tables = [
        t
        for (t,) in rows(
            con,
            "select table_name from information_schema.tables "
            "where table_schema = 'raw' order by table_name",
        )
    ]
    assert {"load_log", "rejects", "goodbooks_ratings"} <= set(tables)
    return {t: rows(con, f"select * from raw.{t} order by rowid") for t in tables}


def assert_stops(exc: pytest.ExceptionInfo, path: Path, line: int, *words: str) -> None:
    message = str(exc.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: line {line}: "), message
    for word in words:
        assert word in message, (word, message)


# --------------------------------------------------------------------------- good folders


def test_goodbooks_folder_loads_every_file(tmp_db, goodbooks_dir):
    reports = load(tmp_db, goodbooks_dir)

    assert sorted(reports) == [
        "goodbooks_book_tags",
        "goodbooks_books",
        "goodbooks_ratings",
        "goodbooks_tags",
        "goodbooks_to_read",
    ]
    assert reports["goodbooks_ratings"] == FileReport(
        str(goodbooks_dir / "ratings.csv"), "goodbooks_ratings", 15, 15, 0, skipped=False
    )
    assert rows(tmp_db, "select * from raw.goodbooks_ratings order by rowid")[:4] == [
        (1, 1, 3),
        (1, 2, 4),
        (1, 3, 5),
        (2, 1, 4),
    ]
    assert rows(
        tmp_db, "select book_id, work_id, title from raw.goodbooks_books order by rowid"
    ) == [("1", "501", "Title 1"), ("2", "502", "Title 2"), ("3", "503", "Title 3")]
    assert rows(tmp_db, "select * from raw.goodbooks_tags order by tag_id") == [
        (0, "to-read"),
        (1, "fantasy"),
        (2, "classics"),
    ]
    assert rows(tmp_db, "select * from raw.goodbooks_to_read order by rowid") == [(1, 2), (9, 1)]
    log = rows(
        tmp_db,
        "select load_id, source, raw_table, rows_read, rows_rejected from raw.load_log "
        "order by raw_table",
    )
    assert log == [
        (1, "goodbooks", "goodbooks_book_tags", 4, 0),
        (1, "goodbooks", "goodbooks_books", 3, 0),
        (1, "goodbooks", "goodbooks_ratings", 15, 0),
        (1, "goodbooks", "goodbooks_tags", 3, 0),
        (1, "goodbooks", "goodbooks_to_read", 2, 0),
    ]
    assert rejects(tmp_db) == []


def test_gzipped_files_load_the_same_rows_as_plain_ones(tmp_path, goodbooks_dir, write_csv):
    zipped = tmp_path / "zipped"
    for plain in goodbooks_dir.iterdir():
        write_csv(zipped / (plain.name + ".gz"), plain.read_bytes(), gz=True)
    with connect(":memory:") as con_plain, connect(":memory:") as con_gz:
        load(con_plain, goodbooks_dir)
        reports = load(con_gz, zipped)

        assert reports["goodbooks_ratings"].file == str(zipped / "ratings.csv.gz")
        for table in (
            "goodbooks_ratings",
            "goodbooks_books",
            "goodbooks_tags",
            "goodbooks_book_tags",
            "goodbooks_to_read",
        ):
            expected = rows(con_plain, f"select * from raw.{table} order by rowid")
            assert (
                expected and rows(con_gz, f"select * from raw.{table} order by rowid") == expected
            )


def test_optional_files_may_be_absent(tmp_db, ratings_folder):
    folder = ratings_folder("1,1,5\n2,1,4\n")

    reports = load(tmp_db, folder)

    assert list(reports) == ["goodbooks_ratings"]
    assert rows(tmp_db, "select count(*) from raw.goodbooks_books") == [(0,)]
    assert rows(tmp_db, "select raw_table from raw.load_log") == [("goodbooks_ratings",)]


def test_toread_csv_is_an_alias_of_to_read(tmp_db, write_csv, ratings_folder):
    folder = ratings_folder("1,1,5\n")
    write_csv(folder / "toread.csv", "user_id,book_id\n1,7\n2,8\n")

    reports = load(tmp_db, folder)

    assert reports["goodbooks_to_read"].file == str(folder / "toread.csv")
    assert rows(tmp_db, "select * from raw.goodbooks_to_read order by rowid") == [(1, 7), (2, 8)]


# --------------------------------------------------------------------------- input that stops the
# load


def _truncated_gzip() -> tuple[bytes, int]:
    """A valid ratings.csv.gz cut in half, and the line on which its readable data ends."""
    text = RATINGS_HEADER + "\n" + "".join(f"{i},{i % 7},{i % 5 + 1}\n" for i in range(1, 3001))
    whole = gzip.compress(text.encode(), mtime=0)
    half = whole[: len(whole) // 2]
    readable = zlib.decompressobj(zlib.MAX_WBITS | 16).decompress(half)
    return half, readable.count(b"\n") + 1


STOPPING_INPUT = {
    # case: (file name, bytes or text, line, words the reason must hold)
    "wrong header": (
        "ratings.csv",
        "uid,bid,score\n1,2,3\n",
        1,
        ["wrong header", "user_id", "uid,bid,score"],
    ),
    "missing header": (
        "ratings.csv",
        "1,2,3\n4,5,5\n",
        1,
        ["missing header", "user_id,book_id,rating", "1,2,3"],
    ),
    "missing required column": (
        "ratings.csv",
        "user_id,book_id\n1,2\n",
        1,
        ["missing required column", "rating"],
    ),
    "columns out of order": (
        "ratings.csv",
        "book_id,user_id,rating\n1,2,3\n",
        1,
        ["wrong header", "book_id,user_id,rating"],
    ),
    "empty file": ("ratings.csv", b"", 1, ["empty"]),
    "empty gzip file": ("ratings.csv.gz", b"", 1, ["empty"]),
    "blank file": ("ratings.csv", "\n\n", 1, ["empty"]),
    "header but no rows": ("ratings.csv", RATINGS_HEADER + "\n", 2, ["header but no rows"]),
    "gzip of a header only": (
        "ratings.csv.gz",
        gzip.compress(b"user_id,book_id,rating\n"),
        2,
        ["header but no rows"],
    ),
    "not gzip at all": (
        "ratings.csv.gz",
        b"user_id,book_id,rating\n1,1,5\n",
        1,
        ["cannot read", "gzip"],
    ),
    "non-UTF-8 header": ("ratings.csv", b"user_id,b\xf6ok_id,rating\n1,2,3\n", 1, ["not UTF-8"]),
    "non-UTF-8 header in gzip": (
        "ratings.csv.gz",
        gzip.compress(b"user_\xffid,book_id,rating\n1,2,3\n"),
        1,
        ["not UTF-8"],
    ),
}


@pytest.mark.parametrize("case", sorted(STOPPING_INPUT))
def test_bad_file_stops_the_load_with_one_line_naming_file_line_and_reason(
    tmp_db, tmp_path, case, write_csv
):
    name, content, line, words = STOPPING_INPUT[case]
    folder = tmp_path / "in"
    write_csv(folder / name, content)

    with pytest.raises(BadInputError) as exc:
        load(tmp_db, folder, max_reject_fraction=1.0)

    assert_stops(exc, folder / name, line, *words)
    assert rows(tmp_db, "select count(*) from raw.goodbooks_ratings") == [(0,)]
    assert rows(tmp_db, "select count(*) from raw.load_log") == [(0,)]
    assert rows(tmp_db, "select count(*) from raw.rejects") == [(0,)]


def test_truncated_gzip_stops_naming_the_line_where_data_ends(tmp_db, tmp_path, write_csv):
    half, line = _truncated_gzip()
    folder = tmp_path / "in"
    write_csv(folder / "ratings.csv.gz", half)
    assert 100 < line < 3000  # the cut is well inside the data

    with pytest.raises(BadInputError) as exc:
        load(tmp_db, folder, max_reject_fraction=1.0)

    assert_stops(exc, folder / "ratings.csv.gz", line, "gzip", "ends early")
    assert rows(tmp_db, "select count(*) from raw.load_log") == [(0,)]


def test_truncated_gzip_json_stops_naming_file_and_line(tmp_db, tmp_path, write_csv):
    folder = tmp_path / "in"
    write_csv(folder / "goodreads_interactions.csv", UCSD_HEADER + "\n1,1,1,5,0\n")
    records = "".join(
        f'{{"book_id": "{i}", "work_id": "{i}", "title": "T{i}"}}\n' for i in range(2000)
    )
    whole = gzip.compress(records.encode(), mtime=0)
    write_csv(folder / "goodreads_books.json.gz", whole[: len(whole) // 2])

    with pytest.raises(BadInputError) as exc:
        load(tmp_db, folder, source="ucsd")

    message = str(exc.value)
    assert message.startswith(f"{folder / 'goodreads_books.json.gz'}: line ")
    assert "gzip" in message and "\n" not in message


def test_empty_gzip_json_stops_with_empty_file_message(tmp_db, tmp_path, write_csv):
    folder = tmp_path / "in"
    write_csv(folder / "goodreads_interactions.csv", UCSD_HEADER + "\n1,1,1,5,0\n")
    write_csv(folder / "goodreads_book_authors.json.gz", b"")

    with pytest.raises(BadInputError) as exc:
        load(tmp_db, folder, source="ucsd")

    assert_stops(exc, folder / "goodreads_book_authors.json.gz", 1, "empty")


def test_missing_ratings_file_stops_naming_the_folder_and_file(
    tmp_db, tmp_path, write_csv, books_csv
):
    folder = tmp_path / "in"
    write_csv(folder / "books.csv", books_csv([(1, 501, "T")]))

    with pytest.raises(BadInputError) as exc:
        load(tmp_db, folder)

    message = str(exc.value)
    assert (
        message.startswith(str(folder))
        and "required file ratings.csv" in message
        and "not found" in message
    )
    assert rows(tmp_db, "select count(*) from raw.goodbooks_books") == [(0,)]


def test_missing_folder_is_a_clear_error(tmp_db, tmp_path):
    with pytest.raises(ShelfwiseError, match="no such directory"):
        load(tmp_db, tmp_path / "nowhere")


# --------------------------------------------------------------------------- rows sent to
# raw.rejects


def test_non_numeric_id_is_rejected_with_its_line_and_counted(tmp_db, ratings_folder):
    folder = ratings_folder("1,1,5\nabc,2,3\n1,3,4\n")

    reports = load(tmp_db, folder, max_reject_fraction=0.5)

    assert reports["goodbooks_ratings"] == FileReport(
        str(folder / "ratings.csv"), "goodbooks_ratings", 3, 2, 1, False
    )
    [(line, text, reason)] = rejects(tmp_db)
    assert (line, text) == (3, "abc,2,3")
    assert "user_id" in reason and '"abc"' in reason and "not an integer" in reason
    assert rows(tmp_db, "select * from raw.goodbooks_ratings order by rowid") == [
        (1, 1, 5),
        (1, 3, 4),
    ]
    assert rows(tmp_db, "select rows_read, rows_rejected from raw.load_log") == [(3, 1)]
    assert rows(tmp_db, "select distinct file, load_id from raw.rejects") == [
        (str(folder / "ratings.csv"), 1)
    ]


def test_too_many_bad_rows_stop_the_load_naming_the_first_bad_line(tmp_db, ratings_folder):
    body = (
        "".join(f"{i},1,5\n" for i in range(1, 11))
        .replace("3,1,5", "x3,1,5")
        .replace("7,1,5", "7,y,5")
    )
    folder = ratings_folder(body)

    with pytest.raises(BadInputError) as exc:
        load(tmp_db, folder, max_reject_fraction=0.1)  # 2 of 10 bad is more than 10%

    assert_stops(
        exc, folder / "ratings.csv", 4, "user_id", "x3", "2 of 10 rows bad", "load stopped"
    )
    assert rows(tmp_db, "select count(*) from raw.rejects") == [(0,)]
    assert rows(tmp_db, "select count(*) from raw.goodbooks_ratings") == [(0,)]


def test_reject_share_at_the_threshold_still_loads(tmp_db, ratings_folder):
    body = "".join(f"{i},1,5\n" for i in range(1, 11)).replace("3,1,5", "x3,1,5")
    folder = ratings_folder(body)

    reports = load(tmp_db, folder, max_reject_fraction=0.1)  # exactly 1 of 10

    assert (
        reports["goodbooks_ratings"].rows_loaded,
        reports["goodbooks_ratings"].rows_rejected,
    ) == (9, 1)


def test_goodbooks_ratings_outside_1_to_5_are_rejected(tmp_db, ratings_folder):
    folder = ratings_folder("1,1,1\n1,2,0\n1,3,5\n1,4,6\n1,5,-1\n")

    reports = load(tmp_db, folder, max_reject_fraction=1.0)

    assert reports["goodbooks_ratings"].rows_rejected == 3
    assert rejects(tmp_db) == [
        (3, "1,2,0", "column rating: 0 is below 1"),
        (5, "1,4,6", "column rating: 6 is above 5"),
        (6, "1,5,-1", "column rating: -1 is below 1"),
    ]
    assert rows(tmp_db, "select rating from raw.goodbooks_ratings order by rowid") == [(1,), (5,)]


def test_ucsd_rating_0_means_shelved_and_is_kept_but_6_is_rejected(tmp_db, ratings_folder):
    folder = ratings_folder(
        "1,1,0,0,0\n1,2,1,5,1\n1,3,1,6,0\n1,4,2,3,0\n",
        name="goodreads_interactions.csv",
        header=UCSD_HEADER,
    )

    reports = load(tmp_db, folder, source="ucsd", max_reject_fraction=1.0)

    assert (
        reports["ucsd_interactions"].rows_loaded,
        reports["ucsd_interactions"].rows_rejected,
    ) == (2, 2)
    assert rows(tmp_db, "select * from raw.ucsd_interactions order by rowid") == [
        (1, 1, 0, 0, 0),
        (1, 2, 1, 5, 1),
    ]
    assert rejects(tmp_db) == [
        (4, "1,3,1,6,0", "column rating: 6 is above 5"),
        (5, "1,4,2,3,0", "column is_read: 2 is above 1"),
    ]


def test_line_numbers_are_exact_when_a_cast_reject_comes_before_a_range_reject(
    tmp_db, ratings_folder
):
    folder = ratings_folder("1,1,5\nx,2,3\n1,3,4\n1,4,9\n1,5,2\n")

    load(tmp_db, folder, max_reject_fraction=1.0)

    assert [(line, text) for line, text, _ in rejects(tmp_db)] == [(3, "x,2,3"), (5, "1,4,9")]


def test_line_numbers_are_exact_for_every_kind_of_reject_mixed_together(tmp_db, ratings_folder):
    lines = [
        "1,1,5",  # 2 kept
        "a,1,5",  # 3 not an integer
        "1,2,4",  # 4 kept
        "1,3,7",  # 5 above 5
        "1,2,3",  # 6 duplicate of line 4
        "1,4,2,9",  # 7 too many fields
        "2,b,1",  # 8 not an integer
        "2,2,",  # 9 missing value
        "2,3,0",  # 10 below 1
        "2,4,4",  # 11 kept
        "-3,1,1",  # 12 negative id
    ]
    folder = ratings_folder("\n".join(lines) + "\n")

    reports = load(tmp_db, folder, max_reject_fraction=1.0)

    got = rejects(tmp_db)
    assert [(line, text) for line, text, _ in got] == [
        (3, "a,1,5"),
        (5, "1,3,7"),
        (6, "1,2,3"),
        (7, "1,4,2,9"),
        (8, "2,b,1"),
        (9, "2,2,"),
        (10, "2,3,0"),
        (12, "-3,1,1"),
    ]
    reasons = [reason for _, _, reason in got]
    assert "not an integer" in reasons[0] and "above 5" in reasons[1] and "duplicate" in reasons[2]
    assert "Expected Number of Columns: 3 Found: 4" in reasons[3] and "missing value" in reasons[5]
    assert reasons[7] == "column user_id: -3 is below 0"
    assert reports["goodbooks_ratings"] == FileReport(
        str(folder / "ratings.csv"), "goodbooks_ratings", 11, 3, 8, False
    )
    assert rows(tmp_db, "select * from raw.goodbooks_ratings order by rowid") == [
        (1, 1, 5),
        (1, 2, 4),
        (2, 4, 4),
    ]


def test_a_short_line_is_one_reject_however_many_columns_it_lacks(tmp_db, ratings_folder):
    # DuckDB reports one error per missing column; the line is still one bad row.
    folder = ratings_folder("1,1,5\n3\n1,3,4\n1,4,9\n")

    reports = load(tmp_db, folder, max_reject_fraction=1.0)

    assert reports["goodbooks_ratings"] == FileReport(
        str(folder / "ratings.csv"), "goodbooks_ratings", 4, 2, 2, False
    )
    got = rejects(tmp_db)
    assert [(line, text) for line, text, _ in got] == [(3, "3"), (5, "1,4,9")]
    assert "Expected Number of Columns: 3 Found: 1" in got[0][2]
    assert rows(tmp_db, "select rows_read, rows_rejected from raw.load_log") == [(4, 2)]


def test_a_book_whose_ids_are_not_whole_numbers_is_rejected_with_its_line(tmp_db, goodbooks_dir):
    from tests.conftest import books_csv_text

    text = books_csv_text([(1, 501, "One"), (2, 502, "Two"), (3, "5x3", "Three")]).replace(
        "\n2,1002,", "\ntwo,1002,"
    )
    (goodbooks_dir / "books.csv").write_text(text)

    reports = load(tmp_db, goodbooks_dir, max_reject_fraction=1.0)

    assert (reports["goodbooks_books"].rows_loaded, reports["goodbooks_books"].rows_rejected) == (
        1,
        2,
    )
    assert [(line, reason) for line, _, reason in rejects(tmp_db)] == [
        (3, "column book_id: two is not a whole number"),
        (4, "column work_id: 5x3 is not a whole number"),
    ]
    assert rows(tmp_db, "select book_id from raw.goodbooks_books") == [("1",)]


def test_non_utf8_bytes_in_books_csv_stop_the_load_naming_the_line(tmp_db, goodbooks_dir):
    from tests.conftest import books_csv_text

    text = (
        books_csv_text([(1, 501, "One"), (2, 502, "Two")])
        .encode()
        .replace(b",Two,", b",Tw\xffo,", 1)
    )
    (goodbooks_dir / "books.csv").write_bytes(text)

    with pytest.raises(BadInputError) as exc:
        load(tmp_db, goodbooks_dir)

    message = str(exc.value)
    assert (
        message.startswith(f"{goodbooks_dir / 'books.csv'}: line 3: Invalid unicode")
        and "\n" not in message
    )
    assert rows(tmp_db, "select count(*) from raw.load_log") == [(0,)]


def test_an_optional_file_missing_from_the_next_folder_empties_its_table(
    tmp_db, tmp_path, goodbooks_dir, caplog
):
    import shutil

    load(tmp_db, goodbooks_dir)
    n_to_read = rows(tmp_db, "select count(*) from raw.goodbooks_to_read")[0][0]
    other = tmp_path / "other"
    shutil.copytree(goodbooks_dir, other)
    (other / "to_read.csv").unlink()

    load(tmp_db, other)

    assert n_to_read > 0
    assert rows(tmp_db, "select count(*) from raw.goodbooks_to_read") == [(0,)]
    assert "has no to_read file: raw.goodbooks_to_read emptied" in caplog.text
    reports = load(
        tmp_db, goodbooks_dir
    )  # back: loaded again, though its bytes match the first load
    assert reports["goodbooks_to_read"].skipped is False
    assert rows(tmp_db, "select count(*) from raw.goodbooks_to_read") == [(n_to_read,)]


def test_a_plain_and_a_gzipped_copy_of_one_file_load_the_plain_one_with_a_warning(
    tmp_db, goodbooks_dir, caplog
):
    plain = goodbooks_dir / "ratings.csv"
    with gzip.open(goodbooks_dir / "ratings.csv.gz", "wt") as fh:
        fh.write("user_id,book_id,rating\n9,9,1\n")

    reports = load(tmp_db, goodbooks_dir)

    assert reports["goodbooks_ratings"].file == str(plain)
    assert "ratings.csv and ratings.csv.gz found; using ratings.csv" in caplog.text


def test_line_numbers_stay_exact_deep_in_a_larger_file(tmp_db, ratings_folder):
    # Big enough for DuckDB to read in several chunks and threads.
    lines = [f"{i // 40},{i % 40},{i % 5 + 1}" for i in range(120_000)]
    lines[9_998] = "oops,1,1"  # file line 10_000
    lines[50_000] = f"{50_000 // 40},{50_000 % 40},8"  # file line 50_002
    lines[119_998] = "7,7"  # file line 120_000
    folder = ratings_folder("\n".join(lines) + "\n")

    load(tmp_db, folder, max_reject_fraction=0.01)

    assert [line for line, _, _ in rejects(tmp_db)] == [10_000, 50_002, 120_000]


def test_non_utf8_bytes_in_a_data_row_reject_that_row(tmp_db, tmp_path, write_csv):
    folder = tmp_path / "in"
    write_csv(folder / "ratings.csv", b"user_id,book_id,rating\n1,1,5\n1,2\xe9,3\n1,3,4\n")

    load(tmp_db, folder, max_reject_fraction=1.0)

    [(line, _, reason)] = rejects(tmp_db)
    assert line == 3 and "utf-8" in reason.lower()
    assert rows(tmp_db, "select * from raw.goodbooks_ratings order by rowid") == [
        (1, 1, 5),
        (1, 3, 4),
    ]


def test_non_utf8_bytes_in_a_data_row_over_the_threshold_stop_with_the_line(
    tmp_db, tmp_path, write_csv
):
    folder = tmp_path / "in"
    write_csv(folder / "ratings.csv", b"user_id,book_id,rating\n1,1,5\n1,2,4\n\xff1,3,4\n")

    with pytest.raises(BadInputError) as exc:
        load(tmp_db, folder)

    assert_stops(exc, folder / "ratings.csv", 4, "utf-8")


def test_duplicate_pair_keeps_the_first_and_rejects_the_second_with_its_line(
    tmp_db, ratings_folder
):
    folder = ratings_folder("1,1,5\n1,2,4\n2,2,2\n1,1,3\n1,1,1\n")

    reports = load(tmp_db, folder, max_reject_fraction=1.0)

    assert reports["goodbooks_ratings"].rows_rejected == 2
    assert rejects(tmp_db) == [
        (5, "1,1,3", "duplicate (user_id, book_id) pair, first seen on an earlier line"),
        (6, "1,1,1", "duplicate (user_id, book_id) pair, first seen on an earlier line"),
    ]
    assert rows(tmp_db, "select * from raw.goodbooks_ratings order by rowid") == [
        (1, 1, 5),
        (1, 2, 4),
        (2, 2, 2),
    ]


def test_a_valid_row_is_kept_when_the_earlier_row_with_its_key_was_rejected(tmp_db, ratings_folder):
    folder = ratings_folder("1,1,9\n1,1,4\n2,2,2\n")

    load(tmp_db, folder, max_reject_fraction=1.0)

    assert rejects(tmp_db) == [(2, "1,1,9", "column rating: 9 is above 5")]
    assert rows(tmp_db, "select * from raw.goodbooks_ratings order by rowid") == [
        (1, 1, 4),
        (2, 2, 2),
    ]


@pytest.mark.parametrize("value", ["1.5", "2.0", "1e3", "0x10", "1_000", "0b11", ".5"])
def test_ids_that_are_not_plain_integers_are_rejected_not_rounded(tmp_db, value, ratings_folder):
    folder = ratings_folder(f"5,1,5\n{value},2,4\n")

    load(tmp_db, folder, max_reject_fraction=1.0)

    assert rejects(tmp_db) == [(3, f"{value},2,4", f'column user_id: "{value}" is not an integer')]
    assert rows(tmp_db, "select * from raw.goodbooks_ratings") == [(5, 1, 5)]


def test_fractional_rating_is_rejected_not_rounded(tmp_db, ratings_folder):
    folder = ratings_folder("1,1,5\n1,2,4.5\n")

    load(tmp_db, folder, max_reject_fraction=1.0)

    assert rejects(tmp_db) == [(3, "1,2,4.5", 'column rating: "4.5" is not an integer')]


def test_spaces_and_plus_signs_around_integers_are_accepted(tmp_db, ratings_folder):
    folder = ratings_folder(" 1 ,+2,3\n")

    load(tmp_db, folder)

    assert rows(tmp_db, "select * from raw.goodbooks_ratings") == [(1, 2, 3)]


def test_duplicate_book_in_json_lines_is_rejected_with_its_line(
    tmp_db, tmp_path, write_csv, write_jsonl
):
    folder = tmp_path / "in"
    write_csv(folder / "goodreads_interactions.csv", UCSD_HEADER + "\n1,1,1,5,0\n")
    write_jsonl(
        folder / "goodreads_books.json.gz",
        [
            {"book_id": "10", "work_id": "1", "title": "A"},
            {"book_id": "11", "work_id": "1", "title": "B"},
            {"book_id": "10", "work_id": "1", "title": "A again"},
        ],
    )

    reports = load(tmp_db, folder, source="ucsd", max_reject_fraction=1.0)

    assert reports["ucsd_books"].rows_rejected == 1
    [(line, text, reason)] = rejects(tmp_db)
    assert (
        line == 3 and text.startswith("10,1,A again") and reason.startswith("duplicate (book_id)")
    )


# --------------------------------------------------------------------------- all or nothing, and
# idempotence


BAD_SECOND_FOLDERS = {
    # A bad file after a good, changed one: the good one's replacement must be rolled back too.
    "tags has a wrong header": ("tags.csv", "id,name\n1,x\n"),
    "to_read is a truncated gzip": ("to_read.csv.gz", None),
    "ratings over the reject threshold": (
        "ratings.csv",
        "user_id,book_id,rating\n1,1,5\nx,1,5\n1,2,9\n",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_SECOND_FOLDERS))
def test_failed_load_leaves_the_warehouse_exactly_as_it_was(
    tmp_db, tmp_path, goodbooks_dir, case, write_csv, books_csv
):
    load(tmp_db, goodbooks_dir, max_reject_fraction=1.0)
    bad = tmp_path / "bad"
    write_csv(
        bad / "ratings.csv", "user_id,book_id,rating\n7,1,5\n7,2,4\n8,x,3\n"
    )  # changed, with a reject
    write_csv(bad / "books.csv", books_csv([(9, 999, "New")]))
    name, content = BAD_SECOND_FOLDERS[case]
    if content is None:
        whole = gzip.compress(
            ("user_id,book_id\n" + "".join(f"{i},{i}\n" for i in range(5000))).encode()
        )
        content = whole[: len(whole) // 2]
    if name == "ratings.csv":
        (bad / "ratings.csv").unlink()
    write_csv(bad / name, content)
    before = snapshot(tmp_db)

    with pytest.raises(BadInputError):
        load(tmp_db, bad, max_reject_fraction=0.5)

    assert snapshot(tmp_db) == before
    assert rows(tmp_db, "select count(*) from raw.goodbooks_ratings") == [(15,)]


def test_failed_load_into_a_warehouse_file_leaves_the_file_as_it_was(
    db_path, tmp_path, goodbooks_dir, write_csv
):
    with connect(db_path) as con:
        load(con, goodbooks_dir)
        before = snapshot(con)
    bad = tmp_path / "bad"
    write_csv(bad / "ratings.csv", "user_id,book_id,rating\n7,1,5\n")
    write_csv(bad / "tags.csv", "")

    with connect(db_path) as con, pytest.raises(BadInputError):
        load(con, bad)

    with connect(db_path) as con:
        assert snapshot(con) == before


def test_loading_the_same_folder_twice_adds_nothing(tmp_db, goodbooks_dir, write_csv):
    write_csv(
        goodbooks_dir / "ratings.csv", (goodbooks_dir / "ratings.csv").read_text() + "9,9,x\n"
    )
    first = load(tmp_db, goodbooks_dir, max_reject_fraction=0.5)
    after_first = snapshot(tmp_db)

    second = load(tmp_db, goodbooks_dir, max_reject_fraction=0.5)

    assert not any(r.skipped for r in first.values())
    assert sorted(second) == sorted(first)
    assert all(
        r.skipped and (r.rows_read, r.rows_loaded, r.rows_rejected) == (0, 0, 0)
        for r in second.values()
    )
    assert snapshot(tmp_db) == after_first
    assert rows(tmp_db, "select count(*) from raw.rejects") == [(1,)]


def test_changing_one_file_reloads_just_that_file_and_replaces_its_table(
    tmp_db, goodbooks_dir, write_csv
):
    load(tmp_db, goodbooks_dir)
    books_before = rows(tmp_db, "select * from raw.goodbooks_books order by rowid")
    write_csv(goodbooks_dir / "ratings.csv", "user_id,book_id,rating\n40,1,2\n41,2,3\n")

    reports = load(tmp_db, goodbooks_dir)

    assert {t for t, r in reports.items() if not r.skipped} == {"goodbooks_ratings"}
    assert reports["goodbooks_ratings"].rows_loaded == 2
    assert rows(tmp_db, "select * from raw.goodbooks_ratings order by rowid") == [
        (40, 1, 2),
        (41, 2, 3),
    ]
    assert rows(tmp_db, "select * from raw.goodbooks_books order by rowid") == books_before
    assert rows(
        tmp_db, "select load_id, raw_table, rows_read from raw.load_log where load_id = 2"
    ) == [(2, "goodbooks_ratings", 2)]
    assert rows(tmp_db, "select count(*) from raw.load_log") == [(6,)]


def test_a_file_changed_back_to_earlier_bytes_is_loaded_again(tmp_db, write_csv, ratings_folder):
    folder = ratings_folder("1,1,5\n")
    original = (folder / "ratings.csv").read_bytes()
    load(tmp_db, folder)
    write_csv(folder / "ratings.csv", "user_id,book_id,rating\n2,2,2\n")
    load(tmp_db, folder)
    write_csv(folder / "ratings.csv", original)

    reports = load(tmp_db, folder)

    assert not reports["goodbooks_ratings"].skipped
    assert rows(tmp_db, "select * from raw.goodbooks_ratings") == [(1, 1, 5)]


# --------------------------------------------------------------------------- UCSD


def test_ucsd_folder_loads_and_transforms_with_editions_collapsed_to_works(tmp_db, ucsd_dir):
    reports = load(tmp_db, ucsd_dir, source="ucsd")
    run_transforms(tmp_db, TransformConfig(source="ucsd", min_user_ratings=1, min_book_ratings=1))

    assert {t: (r.rows_loaded, r.rows_rejected) for t, r in reports.items()} == {
        "ucsd_interactions": (5, 0),
        "ucsd_user_id_map": (3, 0),
        "ucsd_book_id_map": (3, 0),
        "ucsd_books": (3, 0),
        "ucsd_authors": (2, 0),
    }
    assert rows(
        tmp_db,
        "select user_key, book_key, rating, is_read from core.ratings where source = 'ucsd' "
        "order by user_key, book_key",
    ) == [
        (0, 900, 5, True),  # two editions of one work: one row, the rating kept, read on either
        (1, 900, None, True),  # 0 = read but not rated
        (1, 901, 3, True),
        (2, 900, None, False),  # shelved only
    ]
    assert rows(
        tmp_db,
        "select book_key, source_book_id, title, authors, top_tags from core.books "
        "order by book_key",
    ) == [
        (
            900,
            101,
            "Edition B",
            "Ann Author",
            ["fantasy"],
        ),  # the most-rated edition stands for the work
        (901, 200, "Other", "9", ["history"]),
    ]
    assert rows(
        tmp_db, "select authors from staging.stg_ucsd__books where goodreads_book_id = 100"
    ) == [("Ann Author, Tom Translator",)]
    assert rows(
        tmp_db,
        "select u.user_key, b.book_key, r.rating from matrix.ratings r "
        "join matrix.users u using (user_idx) join matrix.books b using (book_idx) "
        "order by 1, 2",
    ) == [(0, 900, 5), (1, 901, 3)]
