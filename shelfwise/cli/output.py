"""How the CLI talks: rich tables, spinners and progress steps (silent with --quiet)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Sequence
from typing import Any

import click
from rich.console import Console
from rich.table import Table

log = logging.getLogger("shelfwise")
console = Console()
err_console = Console(stderr=True)


class State:
    """Global flags of one invocation (``-v``, ``-q``), kept on the click context."""

    verbose: bool = False
    quiet: bool = False


def progress_enabled() -> bool:
    state = click.get_current_context().find_object(State)
    return not (state and state.quiet)


def status(message: str) -> Any:
    """A spinner for a step without a countable length (silent with --quiet)."""
    return console.status(message) if progress_enabled() else contextlib.nullcontext()


class _StatusSteps:
    """A step callback that rewrites one spinner line and logs each step at debug level."""

    def __enter__(self) -> _StatusSteps:
        self._status = console.status("starting")
        self._status.__enter__()
        return self

    def __call__(self, message: str) -> None:
        log.debug(message)
        self._status.update(message)

    def __exit__(self, *exc: object) -> Any:
        return self._status.__exit__(*exc)


def progress_steps() -> Any:
    """A context giving the ``step(message)`` callback long jobs report through."""
    if not progress_enabled():
        return contextlib.nullcontext(lambda message: None)
    return _StatusSteps()


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return "; ".join(map(str, value))
    return str(value)


def print_rows(columns: Sequence[str], rows: Iterable[Sequence[object]], title: str = "") -> None:
    table = Table(title=title or None)
    for c in columns:
        table.add_column(c)
    for row in rows:
        table.add_row(*(_cell(v) for v in row))
    console.print(table)


def print_counts(title: str, counts: dict[str, int]) -> None:
    table = Table(title=title)
    table.add_column("file")
    table.add_column("rows", justify="right")
    for name, n in counts.items():
        table.add_row(name, f"{n:,}")
    console.print(table)


def print_books(
    title: str, books: Any, score_name: str, extra: tuple[str, str] | None = None
) -> None:
    """A serving frame (rank, title, authors, score[, because]) as a numbered table.

    ``extra`` is (column of the frame, heading) shown last, e.g. ("because", "closest favourite").
    """
    table = Table(title=title)
    for col in ("#", "title", "authors", score_name, *([extra[1]] if extra else [])):
        table.add_column(col)
    for row in books.iter_rows(named=True):
        cells = [
            str(row["rank"]),
            row["title"] or f"book {row['book_key']}",
            row["authors"] or "",
            f"{row['score']:.3f}",
        ]
        if extra:
            cells.append(_cell(row[extra[0]]))
        table.add_row(*cells)
    console.print(table)


def print_metrics(rows: Any) -> None:
    """Evaluation rows (kind, run_id, metric) as one table: a column per kind."""

    def label(r: Any) -> str:
        m = r.metric
        return m.name + (f"@{m.k}" if m.k and m.name != "coverage" else "")

    names = list(dict.fromkeys(label(r) for r in rows))
    kinds = list(dict.fromkeys(r.kind for r in rows))
    table = Table(title="test-split metrics (95% bootstrap interval over users)")
    table.add_column("metric")
    for kind in kinds:
        table.add_column(kind, justify="right")
    cells = {}
    for r in rows:
        m = r.metric
        interval = "" if m.ci_low == m.ci_high else f" [{m.ci_low:.4f}, {m.ci_high:.4f}]"
        cells[(label(r), r.kind)] = f"{m.value:.4f}{interval}"
    for name in names:
        table.add_row(name, *(cells.get((name, kind), "") for kind in kinds))
    console.print(table)
