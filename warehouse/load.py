"""Load a dataset's raw files into ``raw.*`` with DuckDB's readers, in one transaction."""

from __future__ import annotations

import csv
import gzip
import hashlib
import logging
import re
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from base.config import LoadConfig
from base.errors import BadInputError, ShelfwiseError
from warehouse.db import scalar, transaction
from warehouse.sources import DATASETS, RawFile

log = logging.getLogger(__name__)

SUFFIXES = {"csv": (".csv", ".csv.gz"), "jsonl": (".json.gz", ".json", ".jsonl", ".jsonl.gz")}


@dataclass(frozen=True)
class FileReport:
    file: str
    table: str
    rows_read: int
    rows_loaded: int
    rows_rejected: int
    skipped: bool  # same bytes as the last load: nothing to do


def find_file(directory: Path, spec: RawFile) -> Path | None:
    """The folder's file for ``spec``: the first of its names and suffixes present (a warning if
    several)."""
    present = [
        directory / f"{name}{suffix}" for name in spec.names for suffix in SUFFIXES[spec.fmt]
    ]
    present = [path for path in present if path.is_file()]
    if len(present) > 1:
        log.warning(
            "%s: %s found; using %s",
            directory,
            " and ".join(p.name for p in present),
            present[0].name,
        )
    return present[0] if present else None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def _open_text(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")


def read_header(path: Path) -> list[str]:
    """The header's column names; a clear error for empty, non-UTF-8 or corrupt-gzip files."""
    try:
        with _open_text(path) as fh:
            first = fh.readline()
    except (OSError, EOFError, zlib.error) as exc:
        raise BadInputError(f"{path}: line 1: cannot read the file ({exc})") from exc
    if not first.strip():
        raise BadInputError(f"{path}: line 1: file is empty (expected a header line)")
    try:
        text = first.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadInputError(
            f"{path}: line 1: header is not UTF-8 ({exc.reason} at byte {exc.start})"
        ) from exc
    return [c.strip() for c in next(csv.reader([text]))]


def check_header(path: Path, spec: RawFile) -> None:
    header = read_header(path)
    expected = [c.name for c in spec.columns]
    if all(h.lstrip("-").replace(".", "").isdigit() for h in header if h):
        raise BadInputError(
            f"{path}: line 1: missing header: expected columns {','.join(expected)}, "
            f"found data {','.join(header)!r}"
        )
    missing = [c.name for c in spec.columns if c.name not in header and not c.optional]
    if missing:
        raise BadInputError(
            f"{path}: line 1: wrong header: missing required column(s) {', '.join(missing)} "
            f"(found {','.join(header)})"
        )


PLAIN_INTEGER_BYTES = b"0123456789,+- \r\n"


def only_plain_integers(path: Path, *, chunk: int = 1 << 24) -> bool:
    """True when every byte after the header is a digit, sign, comma, space or newline.

    Then every field is a plain integer (or empty, or malformed in a way the reader reports
    itself), so DuckDB's typed reader casts exactly: it would otherwise round "1.5" to 2.
    A C-speed byte scan (~1 GB/s) is far cheaper than checking each of 229M x 5 fields in SQL.
    """
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            fh.readline()
            while block := fh.read(chunk):
                if block.translate(None, PLAIN_INTEGER_BYTES):
                    return False
    except (OSError, EOFError, zlib.error):
        return False  # the strict path reads it again and reports exactly where it breaks
    return True


def _reader_sql(path: Path, spec: RawFile, *, plain_integers: bool = False) -> str:
    """A DuckDB table function over the file; the path is quoted by DuckDB, not by us."""
    if spec.fmt == "jsonl":
        cols = ", ".join(f"'{c.name}': '{c.type}'" for c in spec.columns)
        return f"read_json(?, format = 'newline_delimited', columns = {{{cols}}})"
    if spec.all_text:
        return (
            "read_csv(?, header = true, delim = ',', quote = '\"', all_varchar = true, "
            "strict_mode = true)"
        )
    # Unless the bytes prove every field a plain integer, columns are read as text and cast by
    # _typed_query: DuckDB's own cast would turn "1.5" into 2.
    types = ", ".join(
        f"'{c.name}': '{c.type if plain_integers else 'VARCHAR'}'" for c in spec.columns
    )
    return (
        "read_csv(?, header = true, delim = ',', quote = '\"', "
        "store_rejects = true, rejects_table = 'shelfwise_reject_errors', "
        "rejects_scan = 'shelfwise_reject_scans', strict_mode = true, auto_detect = false, "
        f"columns = {{{types}}})"
    )


INTEGER_TYPES = (
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
)


def _typed_query(spec: RawFile, reader: str) -> str:
    """Typed columns plus each row's first cast failure (``shelfwise_cast_error``, NULL when fine)
    and its text.

    ``try_cast`` alone accepts "1.5" (as 2), "1e3" and "0x10", so an integer may hold only digits,
    signs and spaces.
    """
    casts, checks = [], []
    for c in spec.columns:
        if c.type == "VARCHAR":
            casts.append(c.name)
            continue
        casts.append(f"try_cast({c.name} as {c.type}) as {c.name}")
        bad = f"try_cast({c.name} as {c.type}) is null"
        if c.type in INTEGER_TYPES:
            bad += f" or regexp_matches({c.name}, '[^0-9 +-]')"
        kind = "an integer" if c.type in INTEGER_TYPES else f"a valid {c.type}"
        checks.append(
            f"when {c.name} is not null and ({bad}) "
            f"then 'column {c.name}: \"' || {c.name} || '\" is not {kind}'"
        )
    error = ("case " + " ".join(checks) + " end") if checks else "null::varchar"
    text = " || ',' || ".join(f"coalesce({c.name}, '')" for c in spec.columns)
    return (
        f"select {', '.join(casts)}, shelfwise_cast_error is not null as shelfwise_cast_failed, "
        "shelfwise_cast_error, "
        f"case when shelfwise_cast_error is not null then {text} end as shelfwise_raw_text "
        f"from (select *, {error} as shelfwise_cast_error from {reader})"
    )


def _gzip_break_line(path: Path) -> int | None:
    """The line on which a gzip file's data stops decompressing, or None if it reads to its end."""
    newlines = 0
    stream = zlib.decompressobj(zlib.MAX_WBITS | 16)
    try:
        with path.open("rb") as fh:
            while chunk := fh.read(1 << 16):
                while chunk:
                    if stream.eof:  # a file may hold several gzip members, one after another
                        stream = zlib.decompressobj(zlib.MAX_WBITS | 16)
                    newlines += stream.decompress(chunk).count(b"\n")
                    chunk = stream.unused_data
    except zlib.error:
        return newlines + 1
    return None if stream.eof else newlines + 1


def _read_error(path: Path, exc: duckdb.Error) -> BadInputError:
    message = _first_line(str(exc))
    if path.suffix == ".gz":
        line = _gzip_break_line(path)
        if line is not None:
            return BadInputError(
                f"{path}: line {line}: gzip data ends early or is corrupt (truncated download?): "
                f"{message}"
            )
    # DuckDB's CSV errors put the line in the first line and the reason a few lines below it.
    lines = [ln.strip() for ln in str(exc).splitlines()]
    where = re.search(r"CSV Error on Line: (\d+)", lines[0]) if lines else None
    if where:
        reasons = [
            ln
            for ln in lines[1:]
            if ln
            and not ln.startswith(("Original Line", "Possible Solution", "file =", "delimiter"))
        ]
        if reasons:
            return BadInputError(f"{path}: line {where.group(1)}: {reasons[0]}")
    return BadInputError(f"{path}: cannot read: {message}")


def _first_line(message: str) -> str:
    return message.strip().splitlines()[0] if message.strip() else message


def _load_one(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    spec: RawFile,
    load_id: int,
    max_reject_fraction: float,
) -> tuple[int, int, int]:
    """Replace ``raw.<table>`` with the file's valid rows; returns (read, loaded, rejected)."""
    if path.stat().st_size == 0:
        raise BadInputError(f"{path}: line 1: file is empty (0 bytes)")
    typed = spec.fmt == "csv" and not spec.all_text
    if spec.fmt == "csv":
        check_header(path, spec)
        if typed:
            _check_column_order(path, spec)
    target = f"raw.{spec.table}"
    staging = f"raw.__loading_{spec.table}"
    integers_only = all(c.type in INTEGER_TYPES for c in spec.columns)
    plain = typed and integers_only and only_plain_integers(path)
    reader = _reader_sql(path, spec, plain_integers=plain)
    if plain:
        query = (
            f"select {', '.join(c.name for c in spec.columns)}, false as shelfwise_cast_failed, "
            "null::varchar as shelfwise_cast_error, null::varchar as shelfwise_raw_text "
            f"from {reader}"
        )
    elif typed:
        query = _typed_query(spec, reader)
    elif spec.all_text:
        # Named columns (an optional one the file lacks is NULL); others are left out.
        header = set(read_header(path))
        columns = [
            c.name if c.name in header else f"null::varchar as {c.name}" for c in spec.columns
        ]
        query = f"select {', '.join(columns)} from {reader}"
    else:
        query = f"select {', '.join(c.name for c in spec.columns)} from {reader}"
    con.execute("drop table if exists shelfwise_reject_errors")
    con.execute("drop table if exists shelfwise_reject_scans")
    try:
        con.execute(
            f"create or replace table {staging} as {query}",
            [str(path)],
        )
    except duckdb.Error as exc:
        raise _read_error(path, exc) from exc

    # Rows the reader refused (wrong column counts, broken quotes, bad bytes): exact lines from
    # DuckDB, which reports a short line once per missing column; it is one bad row, with its first
    # error.
    cast_rejects = 0
    if typed:
        cast_rejects = int(scalar(con, "select count(distinct line) from shelfwise_reject_errors"))
        if cast_rejects:
            con.execute(
                """insert into raw.rejects
                   select ?, ?, line, arg_min(csv_line, coalesce(column_idx, -1)),
                          arg_min('column ' || coalesce(column_name, '?') || ': ' || error_message,
                                  coalesce(column_idx, -1))
                   from shelfwise_reject_errors group by line""",
                [load_id, str(path)],
            )
    # Rows that parse but break a rule: not an integer, out of range, missing value, duplicate key.
    value_rejects = _reject_rule_breakers(con, staging, path, spec, load_id)
    loaded = int(scalar(con, f"select count(*) from {staging}"))
    rejected = cast_rejects + value_rejects
    read = loaded + rejected
    if spec.must_have_rows and read == 0:
        raise BadInputError(f"{path}: line 2: the file has a header but no rows")
    if read and rejected / read > max_reject_fraction:
        first = con.execute(
            "select line, reason from raw.rejects where load_id = ? and file = ? "
            "order by line limit 1",
            [load_id, str(path)],
        ).fetchall()[0]
        raise BadInputError(
            f"{path}: line {first[0]}: {first[1]} ({rejected:,} of {read:,} rows bad; "
            f"more than {max_reject_fraction:.1%} rejected, load stopped)"
        )
    if typed:
        for helper in ("shelfwise_cast_failed", "shelfwise_cast_error", "shelfwise_raw_text"):
            con.execute(f"alter table {staging} drop column {helper}")
    # Renaming (not copying) keeps a 229M-row load to one write of the data.
    con.execute(f"drop table if exists {target}")
    con.execute(f"alter table {staging} rename to {spec.table}")
    return read, loaded, rejected


def _check_column_order(path: Path, spec: RawFile) -> None:
    # The typed reader maps columns by position, so the file must have exactly our columns in order.
    header = read_header(path)
    expected = [c.name for c in spec.columns]
    if header != expected:
        raise BadInputError(
            f"{path}: line 1: wrong header: expected {','.join(expected)}, found {','.join(header)}"
        )


def _reject_rule_breakers(
    con: duckdb.DuckDBPyConnection, staging: str, path: Path, spec: RawFile, load_id: int
) -> int:
    typed = spec.fmt == "csv" and not spec.all_text
    conditions: list[str] = []
    if typed:
        # A flag, not the message: every column the window below touches is held in memory for all
        # rows.
        conditions.append("when shelfwise_cast_failed then '#cast'")
    for c in spec.columns:
        if not c.nullable:
            conditions.append(f"when {c.name} is null then 'column {c.name}: missing value'")
        if c.digits:
            conditions.append(
                f"when {c.name} is not null and not regexp_full_match(trim({c.name}), '[0-9]+') "
                f"then 'column {c.name}: ' || {c.name} || ' is not a whole number'"
            )
        if c.minimum is not None:
            conditions.append(
                f"when {c.name} < {c.minimum} "
                f"then 'column {c.name}: ' || {c.name} || ' is below {c.minimum:g}'"
            )
        if c.maximum is not None:
            conditions.append(
                f"when {c.name} > {c.maximum} "
                f"then 'column {c.name}: ' || {c.name} || ' is above {c.maximum:g}'"
            )
    if not conditions and not spec.key:
        return 0
    reason = ("case " + " ".join(conditions) + " end") if conditions else "null::varchar"
    if spec.key:
        # A duplicate is judged among rows that pass the other rules: the first valid occurrence is
        # kept.
        key = ", ".join(spec.key)
        reason = (
            f"coalesce({reason}, case when row_number() over "
            f"(partition by ({reason}) is null, {key} order by rowid) > 1 "
            f"then 'duplicate ({key}) pair, first seen on an earlier line' end)"
        )
    text = " || ',' || ".join(f"coalesce(cast(s.{c.name} as varchar), '')" for c in spec.columns)
    message = "bad.reason"
    if typed:
        text = f"coalesce(s.shelfwise_raw_text, {text})"
        message = "case when bad.reason = '#cast' then s.shelfwise_cast_error else bad.reason end"
    con.execute(
        f"""create or replace temp table shelfwise_bad as
            with judged as (select rowid as rid, {reason} as reason from {staging}),
            bad as (select rid, reason from judged where reason is not null)
            select bad.rid, {text} as raw_text, {message} as reason
            from {staging} as s inner join bad on bad.rid = s.rowid"""
    )
    n_bad = int(scalar(con, "select count(*) from shelfwise_bad"))
    if n_bad:
        # Row ids of a table made in this transaction start at an offset; the data index is rid -
        # min. Lines the reader refused are not in the table, so add back each one that comes
        # earlier.
        base = scalar(con, f"select min(rowid) from {staging}")
        cast_lines = (
            "select line - 1 - row_number() over (order by line) as idx "
            "from (select distinct line from shelfwise_reject_errors)"
            if typed
            else "select null::bigint as idx where false"
        )
        first_line = 2 if spec.fmt == "csv" else 1
        con.execute(
            f"""insert into raw.rejects
                with skipped as ({cast_lines})
                select ?, ?,
                       b.rid - ? + ? + (select count(*) from skipped s where s.idx <= b.rid - ?),
                       b.raw_text, b.reason
                from shelfwise_bad b""",
            [load_id, str(path), base, first_line, base],
        )
        con.execute(f"delete from {staging} where rowid in (select rid from shelfwise_bad)")
    con.execute("drop table shelfwise_bad")
    return n_bad


def load_dataset(con: duckdb.DuckDBPyConnection, config: LoadConfig) -> list[FileReport]:
    """Load every present file of ``config.source`` from ``config.directory``: all of them or none.

    A file whose bytes match its last successful load is skipped, so loading twice adds nothing.
    """
    directory = config.directory
    if not directory.is_dir():
        raise ShelfwiseError(f"{directory}: no such directory")
    specs = DATASETS[config.source]
    found = [(spec, find_file(directory, spec)) for spec in specs]
    for spec, path in found:
        if spec.required and path is None:
            names = " or ".join(f"{spec.stem}{s}" for s in SUFFIXES[spec.fmt])
            raise BadInputError(f"{directory}: required file {names} not found")
    reports: list[FileReport] = []
    with transaction(con):
        load_id = int(scalar(con, "select coalesce(max(load_id), 0) + 1 from raw.load_log"))
        for spec, path in found:
            if path is None:
                _clear_absent(con, spec, directory, load_id, config.source)
                continue
            size = path.stat().st_size
            digest = sha256_of(path)
            last = con.execute(
                "select sha256 from raw.load_log where raw_table = ? order by load_id desc limit 1",
                [spec.table],
            ).fetchall()
            if last and last[0][0] == digest:
                log.debug("%s unchanged since its last load; skipped", path)
                reports.append(FileReport(str(path), spec.table, 0, 0, 0, skipped=True))
                continue
            log.info("loading %s into raw.%s", path, spec.table)
            read, loaded, rejected = _load_one(con, path, spec, load_id, config.max_reject_fraction)
            con.execute(
                "insert into raw.load_log values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    load_id,
                    config.source,
                    spec.table,
                    str(path),
                    size,
                    digest,
                    read,
                    rejected,
                    datetime.now(UTC).replace(tzinfo=None),
                ],
            )
            reports.append(FileReport(str(path), spec.table, read, loaded, rejected, skipped=False))
    return reports


def _clear_absent(
    con: duckdb.DuckDBPyConnection, spec: RawFile, directory: Path, load_id: int, source: str
) -> None:
    """An optional file missing from the folder empties its table: old rows must not mix with new
    files.

    The load log records the absence (no file, sha256 ``absent``), so the file's return is loaded
    again even if its bytes match the load before.
    """
    if not int(scalar(con, f"select count(*) from (select 1 from raw.{spec.table} limit 1)")):
        return
    log.warning(
        "%s has no %s file: raw.%s emptied so its old rows cannot mix with the new ones",
        directory,
        spec.stem,
        spec.table,
    )
    con.execute(f"delete from raw.{spec.table}")
    con.execute(
        "insert into raw.load_log values (?, ?, ?, ?, 0, 'absent', 0, 0, ?)",
        [
            load_id,
            source,
            spec.table,
            str(directory / f"{spec.stem} (absent)"),
            datetime.now(UTC).replace(tzinfo=None),
        ],
    )
