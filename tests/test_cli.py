"""The ``shelfwise`` command: end to end on a tiny folder, one-line errors, warehouse choice,
help."""

from __future__ import annotations

import gzip
import logging
import os
import subprocess
import sys
from pathlib import Path

import click
import duckdb
import pytest

from shelfwise.cli import cli, main

SHELFWISE = Path(sys.executable).parent / "shelfwise"


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Run from tmp_path with no SHELFWISE_DB, so the default warehouse lands there; undo the CLI's
    logging setup."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SHELFWISE_DB", raising=False)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def run(*args: str) -> None:
    """``shelfwise ARGS`` in this process; returns normally on success, raises SystemExit
    otherwise."""
    main(list(args))


def run_process(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k != "SHELFWISE_DB"} | (env or {})
    return subprocess.run(
        [str(SHELFWISE), *args], cwd=cwd, env=environ, capture_output=True, text=True, timeout=60
    )


def count(db: Path, sql: str) -> int:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()[0][0]


def built(tmp_path: Path, goodbooks_dir: Path, *transform_args: str) -> Path:
    """A warehouse with the tiny folder loaded and a matrix keeping every rating."""
    db = tmp_path / "w.duckdb"
    run("-q", "load", "goodbooks", str(goodbooks_dir), "--db", str(db))
    run(
        "-q",
        "transform",
        "--min-user-ratings",
        "1",
        "--min-book-ratings",
        "1",
        *transform_args,
        "--db",
        str(db),
    )
    return db


def one_line_failure(capsys, *args: str) -> str:
    """Run a command that must fail with exit 1 and exactly one line on stderr; that line."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        run(*args)
    err = capsys.readouterr().err
    assert exc.value.code == 1, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


# --------------------------------------------------------------------------- end to end


def test_load_transform_and_sql_end_to_end(tmp_path, goodbooks_dir, capsys):
    db = tmp_path / "w.duckdb"

    run("-q", "load", "goodbooks", str(goodbooks_dir), "--db", str(db))
    run("-q", "transform", "--min-user-ratings", "1", "--min-book-ratings", "1", "--db", str(db))
    capsys.readouterr()
    run("sql", "select count(*) as n_ratings from matrix.ratings", "--db", str(db))

    out = capsys.readouterr().out
    assert count(db, "select count(*) from matrix.ratings") == 15
    assert "n_ratings" in out and " 15 " in out
    assert count(db, "select count(*) from matrix.users") == 5
    assert count(db, "select count(*) from raw.load_log") == 5


def test_transform_prints_the_matrix_summary(tmp_path, goodbooks_dir, capsys):
    db = tmp_path / "w.duckdb"
    run("-q", "load", "goodbooks", str(goodbooks_dir), "--db", str(db))
    capsys.readouterr()

    run(
        "-q",
        "transform",
        "--min-user-ratings",
        "3",
        "--min-book-ratings",
        "1",
        "--test-fraction",
        "0",
        "--db",
        str(db),
    )

    assert "matrix: 5 users x 3 books; 15 train / 0 test ratings" in capsys.readouterr().out


def test_load_reports_rejected_rows_then_skips_unchanged_files(tmp_path, goodbooks_dir, capsys):
    db = tmp_path / "w.duckdb"
    ratings = goodbooks_dir / "ratings.csv"
    ratings.write_text(ratings.read_text() + "6,1,9\n")

    run(
        "-q",
        "load",
        "goodbooks",
        str(goodbooks_dir),
        "--max-reject-fraction",
        "0.1",
        "--db",
        str(db),
    )
    first = capsys.readouterr().out
    run(
        "-q",
        "load",
        "goodbooks",
        str(goodbooks_dir),
        "--max-reject-fraction",
        "0.1",
        "--db",
        str(db),
    )
    second = capsys.readouterr().out

    assert "1 rows rejected" in first and "raw.rejects" in first
    assert second.count("unchanged") == 5 and "rejected:" not in second
    assert count(db, "select count(*) from raw.rejects") == 1
    assert count(db, "select count(*) from raw.load_log") == 5


# --------------------------------------------------------------------------- errors


def bad_inputs(tmp_path: Path) -> dict[str, Path]:
    folders = {}
    folders["wrong header"] = tmp_path / "wrong_header"
    (folders["wrong header"]).mkdir()
    (folders["wrong header"] / "ratings.csv").write_text("uid,bid,score\n1,2,3\n")
    folders["truncated gzip"] = tmp_path / "truncated"
    folders["truncated gzip"].mkdir()
    whole = gzip.compress(
        ("user_id,book_id,rating\n" + "".join(f"{i},1,5\n" for i in range(4000))).encode()
    )
    (folders["truncated gzip"] / "ratings.csv.gz").write_bytes(whole[: len(whole) // 2])
    folders["too many bad rows"] = tmp_path / "bad_rows"
    folders["too many bad rows"].mkdir()
    (folders["too many bad rows"] / "ratings.csv").write_text(
        "user_id,book_id,rating\n1,1,5\nx,1,5\n"
    )
    folders["no ratings file"] = tmp_path / "no_ratings"
    folders["no ratings file"].mkdir()
    folders["no such folder"] = tmp_path / "nowhere"
    return folders


EXPECTED_ERROR = {
    "wrong header": "ratings.csv: line 1: wrong header",
    "truncated gzip": "ratings.csv.gz: line ",
    "too many bad rows": "ratings.csv: line 3: column user_id",
    "no ratings file": "required file ratings.csv or ratings.csv.gz not found",
    "no such folder": "nowhere: no such directory",
}


@pytest.mark.parametrize("case", sorted(EXPECTED_ERROR))
def test_bad_input_exits_1_with_exactly_one_error_line_and_no_traceback(tmp_path, case):
    folder = bad_inputs(tmp_path)[case]
    db = tmp_path / "w.duckdb"

    result = run_process("-q", "load", "goodbooks", str(folder), "--db", str(db), cwd=tmp_path)

    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert EXPECTED_ERROR[case] in lines[0]
    assert "Traceback" not in result.stderr + result.stdout


def test_without_quiet_progress_lines_come_before_the_single_error_line(tmp_path):
    folder = bad_inputs(tmp_path)["wrong header"]

    result = run_process(
        "load", "goodbooks", str(folder), "--db", str(tmp_path / "w.duckdb"), cwd=tmp_path
    )

    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert [line for line in lines if line.startswith("error:")] == lines[-1:]
    assert "line 1: wrong header" in lines[-1]
    assert "Traceback" not in result.stderr


def test_verbose_shows_the_traceback(tmp_path):
    folder = bad_inputs(tmp_path)["wrong header"]

    result = run_process(
        "-v", "load", "goodbooks", str(folder), "--db", str(tmp_path / "w.duckdb"), cwd=tmp_path
    )

    assert result.returncode == 1
    assert "Traceback" in result.stderr and "BadInputError" in result.stderr


def test_failed_load_from_the_cli_leaves_the_warehouse_as_it_was(tmp_path, goodbooks_dir, capsys):
    db = tmp_path / "w.duckdb"
    run("-q", "load", "goodbooks", str(goodbooks_dir), "--db", str(db))
    (goodbooks_dir / "ratings.csv").write_text("user_id,book_id,rating\n7,7,5\n")
    (goodbooks_dir / "tags.csv").write_text("tag,name\n")
    capsys.readouterr()

    with pytest.raises(SystemExit) as exc:
        run("-q", "load", "goodbooks", str(goodbooks_dir), "--db", str(db))

    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert (
        err.startswith("error: ")
        and err.count("\n") == 1
        and "tags.csv: line 1: wrong header" in err
    )
    assert count(db, "select count(*) from raw.goodbooks_ratings") == 15
    assert count(db, "select count(*) from raw.load_log") == 5


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["transform", "--min-user-ratings", "99"],
            "error: no goodbooks ratings survive the filters",
        ),
        (["sql", "select * from no_such_table"], "error: query failed: Catalog Error"),
    ],
)
def test_expected_failures_of_other_commands_are_one_line(
    tmp_path, goodbooks_dir, capsys, args, message
):
    db = tmp_path / "w.duckdb"
    run("-q", "load", "goodbooks", str(goodbooks_dir), "--db", str(db))
    capsys.readouterr()

    with pytest.raises(SystemExit) as exc:
        run("-q", *args, "--db", str(db))

    err = capsys.readouterr().err
    assert exc.value.code == 1
    assert err.startswith(message) and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            "use memory; detach warehouse; attach '{db}' as w; delete from w.raw.goodbooks_ratings",
            "error: only queries run here (select, show, describe, explain, pragma, call), not set",
        ),
        ("delete from raw.goodbooks_ratings", "error: only queries run here"),
        ("select 1; drop table raw.goodbooks_ratings", "error: only queries run here"),
        ("copy (select 1) to '{dir}/out.csv'", "error: only queries run here"),
        ("select * from read_csv('{dir}/w.duckdb')", "error: query failed: Permission Error"),
        ("", "error: no SQL statement given"),
        (";", "error: no SQL statement given"),
        ("selec 1", "error: query failed: Parser Error"),
    ],
)
def test_sql_runs_queries_only_and_never_touches_a_file(
    tmp_path, goodbooks_dir, capsys, query, message
):
    db = tmp_path / "w.duckdb"
    run("-q", "load", "goodbooks", str(goodbooks_dir), "--db", str(db))
    capsys.readouterr()

    assert one_line_failure(
        capsys, "sql", query.format(db=db, dir=tmp_path), "--db", str(db)
    ).startswith(message)
    assert count(db, "select count(*) from raw.goodbooks_ratings") == 15
    assert not (tmp_path / "out.csv").exists()


def test_sql_still_answers_show_describe_and_multi_statement_queries(
    tmp_path, goodbooks_dir, capsys
):
    db = tmp_path / "w.duckdb"
    run("-q", "load", "goodbooks", str(goodbooks_dir), "--db", str(db))
    capsys.readouterr()

    run("sql", "describe raw.goodbooks_ratings", "--db", str(db))
    assert "user_id" in capsys.readouterr().out
    run("sql", "show all tables", "--db", str(db))
    assert "goodbooks_" in capsys.readouterr().out  # rich shortens long names to the terminal width
    run("sql", "select 1; select 42 as answer", "--db", str(db))
    assert "answer" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["mf", "-p", "factors=-3"], "error: mf factors=-3: must be a whole number of at least 1"),
        (["mf", "-p", "factors=0"], "error: mf factors=0: must be a whole number of at least 1"),
        (
            ["mf", "-p", "iterations=0"],
            "error: mf iterations=0: must be a whole number of at least 1",
        ),
        (["mf", "-p", "reg=-1"], "error: mf reg=-1.0: must be a finite number of at least 0"),
        (["mf", "-p", "reg=nan"], "error: --param 'reg=nan': reg takes a finite number, not 'nan'"),
        (
            ["mf", "-p", "init_scale=-1"],
            "error: mf init_scale=-1.0: must be a finite number above 0",
        ),
        (
            ["mf", "-p", "random_state=-1"],
            "error: mf random_state=-1: must be a whole number of at least 0",
        ),
        (
            ["mf", "-p", "factors=abc"],
            "error: --param 'factors=abc': factors takes a whole number, not 'abc'",
        ),
        (
            ["baseline", "-p", "reg_user=inf"],
            "error: --param 'reg_user=inf': reg_user takes a finite number, not 'inf'",
        ),
        (
            ["als", "-p", "weighting=foo"],
            "error: als weighting='foo': must be one of rating, binary, bm25",
        ),
        (["als", "-p", "alpha=0"], "error: als alpha=0.0: must be a finite number above 0"),
        (["svd", "-p", "k=100000"], "error: svd k=100000: must be below the matrix's smaller side"),
        (
            ["svd", "-p", "remove_biases=maybe"],
            "error: --param 'remove_biases=maybe': remove_biases takes true or false",
        ),
    ],
)
def test_fit_refuses_unusable_parameters_in_one_line_and_records_no_run(
    tmp_path, goodbooks_dir, capsys, args, message
):
    db = built(tmp_path, goodbooks_dir)

    assert one_line_failure(capsys, "-q", "fit", *args, "--no-tsne", "--db", str(db)).startswith(
        message
    )
    assert count(db, "select count(*) from models.runs where status = 'succeeded'") == 0


def test_sql_without_a_warehouse_says_how_to_make_one(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        run("sql", "select 1", "--db", str(tmp_path / "missing.duckdb"))

    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: no warehouse at ") and "shelfwise load goodbooks" in err
    assert not (tmp_path / "missing.duckdb").exists()


@pytest.mark.parametrize(
    "args",
    [["transform"], ["fit", "mf"], ["tune", "svd"], ["evaluate"], ["refresh"]],
)
def test_commands_other_than_load_never_create_a_warehouse_at_a_mistyped_path(
    tmp_path, capsys, args
):
    missing = tmp_path / "typo.duckdb"

    assert one_line_failure(capsys, "-q", *args, "--db", str(missing)).startswith(
        f"error: no warehouse at {missing}"
    )
    assert list(tmp_path.iterdir()) == []


def test_evaluate_on_an_empty_test_split_says_so_and_stores_nothing(
    tmp_path, goodbooks_dir, capsys
):
    db = built(tmp_path, goodbooks_dir, "--test-fraction", "0")
    run("-q", "fit", "baseline", "--no-tsne", "--db", str(db))

    err = one_line_failure(capsys, "-q", "evaluate", "--db", str(db))
    assert err.startswith("error: the test split is empty") and "RuntimeWarning" not in err
    assert count(db, "select count(*) from models.metrics") == 0


def test_refresh_with_an_empty_test_split_fits_and_skips_evaluation(
    tmp_path, goodbooks_dir, capsys
):
    db = built(tmp_path, goodbooks_dir, "--test-fraction", "0")
    capsys.readouterr()
    run("-q", "refresh", "--kinds", "baseline", "--no-tsne", "--db", str(db))

    assert count(db, "select count(*) from models.runs where kind = 'baseline' and published") == 1
    assert count(db, "select count(*) from models.metrics") == 0
    assert "test split is empty" in capsys.readouterr().err


def test_transform_warns_about_rated_books_missing_from_the_books_file(
    tmp_path, goodbooks_dir, capsys
):
    db = tmp_path / "w.duckdb"
    ratings = goodbooks_dir / "ratings.csv"
    ratings.write_text(ratings.read_text() + "1,99999,4\n")
    run("-q", "load", "goodbooks", str(goodbooks_dir), "--db", str(db))
    capsys.readouterr()

    run("-q", "transform", "--min-user-ratings", "1", "--min-book-ratings", "1", "--db", str(db))

    assert "1 books in the matrix have no row in the books file" in capsys.readouterr().err.replace(
        "\n", " "
    )
    assert (
        count(
            db,
            "select count(*) from core.books where title is null "
            "and book_key in (select book_key from matrix.books)",
        )
        == 1
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--source", "ucsd"], "error: no ucsd files loaded yet: give --data DIR (a ucsd folder)"),
        (["--kinds", ""], "error: --kinds: give at least one of baseline, svd, als, mf"),
        (["--kinds", "mf,nope"], "error: --kinds: unknown kind(s) nope"),
    ],
)
def test_refresh_refuses_what_it_cannot_refresh_in_one_line(
    tmp_path, goodbooks_dir, capsys, args, message
):
    db = built(tmp_path, goodbooks_dir)

    assert one_line_failure(capsys, "-q", "refresh", *args, "--db", str(db)).startswith(message)
    assert count(db, "select count(*) from models.runs") == 0


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        run("load", "nosuchsource", ".")

    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: Invalid value for '{goodbooks|ucsd}'") and err.count("\n") == 1
    assert err.rstrip().endswith("(see `shelfwise load --help`)")


def test_bare_command_prints_the_help_and_succeeds(capsys):
    with pytest.raises(SystemExit) as exc:
        run()

    assert exc.value.code == 0
    assert capsys.readouterr().out.startswith("Usage: shelfwise [OPTIONS] COMMAND")


def test_usage_errors_of_options_are_one_line_too(capsys):
    with pytest.raises(SystemExit) as exc:
        run("fit", "mf", "--neighbours", "0")
    err = capsys.readouterr().err
    assert exc.value.code == 2
    assert (
        err.startswith("error: Invalid value for '--neighbours'")
        and err.count("\n") == 1
        and "Usage:" not in err
    )

    with pytest.raises(SystemExit):
        run("load")
    err = capsys.readouterr().err
    assert (
        err.startswith("error: Missing argument '{goodbooks|ucsd}'. Choose from: goodbooks, ucsd")
        and err.count("\n") == 1
    )


# --------------------------------------------------------------------------- which warehouse


def test_db_option_and_environment_variable_pick_the_warehouse(
    tmp_path, goodbooks_dir, monkeypatch
):
    from_env, from_option = tmp_path / "env" / "a.duckdb", tmp_path / "opt" / "b.duckdb"

    monkeypatch.setenv("SHELFWISE_DB", str(from_env))
    run("-q", "load", "goodbooks", str(goodbooks_dir))
    assert from_env.exists() and not from_option.exists()
    assert count(from_env, "select count(*) from raw.goodbooks_ratings") == 15

    (goodbooks_dir / "ratings.csv").write_text("user_id,book_id,rating\n1,1,5\n")
    run(
        "-q", "load", "goodbooks", str(goodbooks_dir), "--db", str(from_option)
    )  # the option beats the variable
    assert count(from_option, "select count(*) from raw.goodbooks_ratings") == 1
    assert count(from_env, "select count(*) from raw.goodbooks_ratings") == 15
    assert not (tmp_path / "var").exists()


def test_without_option_or_variable_the_warehouse_is_var_shelfwise_duckdb(tmp_path, goodbooks_dir):
    run("-q", "load", "goodbooks", str(goodbooks_dir))

    assert (
        count(tmp_path / "var" / "shelfwise.duckdb", "select count(*) from raw.goodbooks_ratings")
        == 15
    )


def test_environment_variable_reaches_a_subprocess(tmp_path, goodbooks_dir):
    db = tmp_path / "from_env.duckdb"

    loaded = run_process(
        "-q", "load", "goodbooks", str(goodbooks_dir), cwd=tmp_path, env={"SHELFWISE_DB": str(db)}
    )
    queried = run_process(
        "sql",
        "select count(*) from raw.goodbooks_ratings",
        cwd=tmp_path,
        env={"SHELFWISE_DB": str(db)},
    )

    assert loaded.returncode == 0 and queried.returncode == 0, loaded.stderr + queried.stderr
    assert " 15 " in queried.stdout
    assert not (tmp_path / "var").exists()


# --------------------------------------------------------------------------- help


def commands(group: click.Group = cli, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for name, command in sorted(group.commands.items()):
        found.append((*prefix, name))
        if isinstance(command, click.Group):
            found += commands(command, (*prefix, name))
    return found


def shown_default(option: click.Option) -> str | None:
    """How ``--help`` should render the option's default, or None where nothing is to be shown."""
    unset = (
        option.required or type(option.default).__name__ == "Sentinel"
    )  # click 8.3+: no default given
    if (
        unset
        or option.hidden
        or option.show_default is False
        or option.default in (None, (), [])
        or callable(option.default)
    ):
        return None
    if option.is_flag and option.is_bool_flag:
        if not option.secondary_opts:
            return None  # a plain on-switch that is off by default
        names = option.opts if option.default else option.secondary_opts
        return names[0].lstrip("-")
    return str(option.default)


def command_at(path: tuple[str, ...]) -> click.Command:
    command: click.Command = cli
    for name in path:
        command = command.commands[name]  # type: ignore[attr-defined]
    return command


@pytest.mark.parametrize("path", [(), *commands()], ids=lambda p: " ".join(p) or "shelfwise")
def test_help_works_and_shows_every_default(path, capsys):
    run(*path, "--help")

    text = " ".join(capsys.readouterr().out.split())
    assert text.startswith(f"Usage: shelfwise {' '.join(path)}".rstrip())
    command = command_at(path)
    for param in command.params:
        if isinstance(param, click.Option) and (default := shown_default(param)) is not None:
            assert f"default: {default}" in text, (
                f"{param.opts[0]} does not show its default {default!r}"
            )
    if isinstance(command, click.Group):
        assert all(name in text for name in command.commands)


def test_help_covers_the_core_commands():
    assert {("load",), ("transform",), ("sql",)} <= set(commands())
