"""The weekly digest command: build, print or write, send and remember."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from base.errors import ShelfwiseError
from base.registry import fittable
from shelfwise.cli.options import DB_OPTION
from shelfwise.cli.output import console, err_console

log = logging.getLogger(__name__)


@click.command()
@click.option(
    "--favorites",
    "--favourites",
    "favourites_file",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    default=None,
    help="JSON list of titles, or one title per line (or give --reader).",
)
@click.option(
    "--reader",
    "reader_name",
    default=None,
    help="An imported reader (`shelfwise reader import`): their fold-in recommendations.",
)
@click.option(
    "--to-read",
    type=click.Choice(["include", "exclude"]),
    default="exclude",
    help="With --reader: count the to-read shelf as interest.",
)
@click.option(
    "--pick",
    type=click.IntRange(min=1),
    default=3,
    help="Favourites drawn at random for this digest.",
)
@click.option("--n", type=click.IntRange(1, 100), default=8, help="Books to recommend.")
@click.option(
    "--model",
    "kind",
    type=click.Choice(fittable()),
    default=None,
    help="Which model (with --favorites: one with book vectors or weights) [default: the best "
    "published for ranking; with --favorites, for neighbours].",
)
@click.option(
    "--seed",
    type=int,
    default=None,
    help="Seed of the pick [default: ISO year*100 + ISO week, so one week is reproducible].",
)
@click.option(
    "--history-weeks",
    type=click.IntRange(min=0),
    default=8,
    help="Never repeat a book sent in this many past weeks.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Also write digest.txt, digest.html and digest.eml here.",
)
@click.option(
    "--send",
    is_flag=True,
    help="Mail it via SMTP (SHELFWISE_SMTP_* and SHELFWISE_MAIL_* variables) and record it.",
)
@click.option(
    "--dry-run", is_flag=True, help="Build and print only: never send or record, even with --send."
)
@DB_OPTION
def digest(
    favourites_file: Path | None,
    reader_name: str | None,
    to_read: str,
    pick: int,
    n: int,
    kind: str | None,
    seed: int | None,
    history_weeks: int,
    out_dir: Path | None,
    send: bool,
    dry_run: bool,
    db_path: Path,
) -> None:
    """Weekly digest: books near the centroid of a few random favourites, or an imported reader's
    fold-in recommendations; never a book sent in recent weeks."""
    import datetime as dt

    import numpy as np

    from shelfwise import digest as mail
    from warehouse.db import open_for_reading, writer

    if (favourites_file is None) == (reader_name is None):
        raise ShelfwiseError("give either --favorites FILE or --reader NAME")
    titles = mail.read_favourites(favourites_file) if favourites_file else []
    deliver = send and not dry_run
    # Bad settings fail before any work.
    settings = mail.SmtpSettings.from_env() if deliver else None
    seed = mail.week_seed(dt.date.today()) if seed is None else seed
    rng = np.random.default_rng(seed)
    opened = writer(db_path, create=False) if deliver else open_for_reading(db_path)
    with opened as con:
        if reader_name is not None:
            built = mail.build_reader_digest(
                con,
                reader_name,
                n=n,
                kind=kind,
                history_weeks=history_weeks,
                to_read=to_read == "include",
            )
        else:
            built = mail.build_digest(
                con, titles, pick=pick, n=n, kind=kind, rng=rng, history_weeks=history_weeks
            )
        for skipped in built.unresolved:
            err_console.print(
                f"warning: skipped favourite: {skipped}",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
        message = mail.render(
            built,
            sender=settings.mail_from if settings else None,
            recipients=settings.mail_to if settings else (),
        )
        if out_dir is not None:
            for path in mail.write_message(message, out_dir):
                log.info("wrote %s", path)
        if not deliver:
            console.print(
                mail.render_text(built), markup=False, highlight=False, soft_wrap=True, end=""
            )
            console.print(f"[dim]seed {seed}; not sent{' (--dry-run)' if send else ''}[/dim]")
            return
        result = mail.send(message, settings)
        digest_id = mail.record(con, built, result.accepted, message_id=result.message_id)
    console.print(
        f"sent digest {digest_id} ({len(built.recommendations)} books, seed {seed}) "
        f"to {', '.join(result.accepted)}"
    )
    if result.refused:
        raise ShelfwiseError(
            f"the server refused {', '.join(result.refused)}; the others got digest {digest_id}"
        )
