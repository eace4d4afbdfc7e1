"""The one ``shelfwise`` command: thin subcommands over the library, one module per group.

data (generate, download, load, transform, sql), models (fit, tune, evaluate, refresh),
ask (similar, recommend), serve (dashboard), digest. ``main()`` turns expected errors into one
line and an exit code; tracebacks only with ``-v``.
"""

from __future__ import annotations

import logging
import sys

import click
import duckdb
from rich.logging import RichHandler

from base.errors import ShelfwiseError
from shelfwise.cli import ask, data, digest, models, reader, serve
from shelfwise.cli.output import State, err_console


@click.group(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.option("-v", "--verbose", is_flag=True, help="Debug logging and full tracebacks.")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors; no progress bars.")
@click.pass_context
def cli(ctx: click.Context, verbose: bool, quiet: bool) -> None:
    """Shelfwise: Goodreads ratings -> DuckDB warehouse -> factor models -> dashboard."""
    state = ctx.ensure_object(State)
    state.verbose, state.quiet = verbose, quiet
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(
        level=level,
        format="%(message)s",
        handlers=[RichHandler(console=err_console, show_path=False, show_time=False, markup=False)],
        force=True,
    )
    # Third-party chatter stays out of the user's way unless asked for.
    for noisy in ("numba", "urllib3", "werkzeug", "matplotlib", "py4j", "openTSNE"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbose else logging.WARNING)


for command in (
    data.generate,
    data.download,
    data.load,
    data.transform,
    data.sql,
    models.fit,
    models.tune,
    models.evaluate,
    ask.similar,
    ask.recommend,
    reader.reader,
    models.refresh,
    serve.dashboard,
    digest.digest,
):
    cli.add_command(command)


def main(argv: list[str] | None = None) -> None:
    """Entry point: expected errors become one line on stderr and exit code 1."""
    verbose = "-v" in (argv or sys.argv[1:]) or "--verbose" in (argv or sys.argv[1:])
    try:
        cli.main(args=argv, prog_name="shelfwise", standalone_mode=False)
    except click.exceptions.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except click.exceptions.NoArgsIsHelpError as exc:  # bare `shelfwise`: the help, not an error
        click.echo(exc.ctx.get_help() if exc.ctx else exc.format_message())
        sys.exit(0)
    except click.UsageError as exc:
        # One line like every other error, not click's usage block; the help says the rest.
        where = f"`{exc.ctx.command_path} --help`" if exc.ctx else "`shelfwise --help`"
        message = " ".join(exc.format_message().split())
        err_console.print(
            f"error: {message} (see {where})", markup=False, highlight=False, soft_wrap=True
        )
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except ShelfwiseError as exc:
        if verbose:
            raise
        err_console.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(1)
    except (
        KeyboardInterrupt,
        duckdb.InterruptException,
    ):  # Ctrl-C lands in Python or inside a query
        err_console.print("interrupted; nothing half-written was kept")
        sys.exit(130)
    except Exception as exc:  # an unexpected failure: still one line, the traceback on request
        if verbose:
            raise
        first = (str(exc).strip().splitlines() or [""])[0]
        err_console.print(
            f"error: {type(exc).__name__}: {first} (run with -v for the traceback)",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(2)


if __name__ == "__main__":
    main()
