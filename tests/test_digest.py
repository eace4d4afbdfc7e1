"""The weekly digest: building, rendering, sending through a real SMTP server on 127.0.0.1,
history, deploy files."""

from __future__ import annotations

import base64
import email
import email.policy
import json
import logging
import re
import shlex
import shutil
import socket
import subprocess
import sys
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import click
import duckdb
import numpy as np
import pytest

import shelfwise
from base.errors import ShelfwiseError
from shelfwise import digest as mail
from shelfwise.serving import Book, TitleNotFound
from warehouse.db import connect, table_exists

# aiosmtpd warns about AUTH without TLS, which is what a loopback test server should do.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
PASSWORD = "s3cret-Pa55word!"  # must never appear in output, logs or errors
USER = "digest-bot"

DAN_BROWN = ["The Da Vinci Code", "Angels & Demons", "Digital Fortress"]
TOLKIEN = ["The Hobbit", "The Fellowship of the Ring", "The Two Towers"]
FAVOURITES = [
    *DAN_BROWN,
    "Deception Point",
    "The Hunger Games",
    "Twilight",
    "The Hobbit",
    "Harry Potter and the Sorcerer's Stone",
]
UNKNOWN = "Zzyzx Quuxbar Nonexistent"


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No mail settings or warehouse from the developer's environment; undo the CLI's logging."""
    import os

    for name in list(os.environ):
        if name.startswith(("SHELFWISE_SMTP_", "SHELFWISE_MAIL_")) or name == "SHELFWISE_DB":
            monkeypatch.delenv(name)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


# ----------------------------------------------------------------------------- the warehouse


@pytest.fixture(scope="module")
def warehouse_file(published_warehouse: Path) -> Path:
    """The shared published warehouse (tests/conftest.py); tests that write use a copy (``db``)."""
    return published_warehouse


@pytest.fixture
def db(warehouse_file: Path, tmp_path: Path) -> Path:
    """A private copy of the module's warehouse, so digest history never leaks between tests."""
    target = tmp_path / "warehouse.duckdb"
    shutil.copyfile(warehouse_file, target)
    return target


@pytest.fixture
def con(db: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    c = connect(db)
    yield c
    c.close()


@pytest.fixture
def favourites_file(tmp_path: Path) -> Path:
    path = tmp_path / "favourites.txt"
    path.write_text(
        "# my favourites\n" + "\n".join([*FAVOURITES, UNKNOWN]) + "\n", encoding="utf-8"
    )
    return path


def history(db: Path) -> list[tuple]:
    with connect(db, read_only=True) as c:
        if not table_exists(c, "models", "digests"):
            return []
        return c.execute(
            """select digest_id, rank, book_key, recipient, run_id from models.digests
               order by digest_id, rank"""
        ).fetchall()


# ----------------------------------------------------------------------------- a real SMTP server


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    login: bytes | None

    @property
    def message(self) -> email.message.EmailMessage:
        return email.message_from_bytes(self.content, policy=email.policy.default)  # type: ignore[return-value]


@dataclass
class Smtp:
    port: int
    received: list[Received] = field(default_factory=list)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_server() -> Iterator[Callable[..., Smtp]]:
    """Start aiosmtpd on 127.0.0.1: ``start(data_reply=None, accept_login=True, refuse=())``."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    controllers = []

    def start(
        *, data_reply: str | None = None, accept_login: bool = True, refuse: tuple[str, ...] = ()
    ) -> Smtp:
        server = Smtp(_free_port())

        class Handler:
            async def handle_RCPT(self, smtp, session, envelope, address, rcpt_options):
                if address in refuse:
                    return "550 5.1.1 No such user"
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, smtp, session, envelope):
                if data_reply:
                    return data_reply
                login = (
                    session.auth_data.login if session.authenticated and session.auth_data else None
                )
                server.received.append(
                    Received(
                        envelope.mail_from,
                        list(envelope.rcpt_tos),
                        envelope.original_content or envelope.content,
                        login,
                    )
                )
                return "250 2.0.0 OK: queued"

        def authenticator(smtp, session, envelope, mechanism, auth_data):
            ok = (
                accept_login
                and auth_data.login == USER.encode()
                and auth_data.password == PASSWORD.encode()
            )
            # handled=False: aiosmtpd answers a failure with
            # "535 5.7.8 Authentication credentials invalid"
            return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

        controller = Controller(
            Handler(),
            hostname="127.0.0.1",
            port=server.port,
            authenticator=authenticator,
            auth_require_tls=False,
            auth_required=True,
        )
        controller.start()
        controllers.append(controller)
        return server

    yield start
    for c in controllers:
        c.stop()


@pytest.fixture
def smtp_env(monkeypatch: pytest.MonkeyPatch) -> Callable[[int], None]:
    def configure(port: int) -> None:
        for name, value in {
            "SHELFWISE_SMTP_HOST": "127.0.0.1",
            "SHELFWISE_SMTP_PORT": str(port),
            "SHELFWISE_SMTP_SECURITY": "none",
            "SHELFWISE_SMTP_USER": USER,
            "SHELFWISE_SMTP_PASSWORD": PASSWORD,
            "SHELFWISE_SMTP_TIMEOUT": "10",
            "SHELFWISE_MAIL_FROM": "Shelfwise <digest@example.org>",
            "SHELFWISE_MAIL_TO": "reader@example.org, Second Reader <second@example.org>",
        }.items():
            monkeypatch.setenv(name, value)

    return configure


# ----------------------------------------------------------------------------- running the real CLI


@dataclass
class Run:
    code: int
    out: str
    err: str


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> Run:
    """``shelfwise ARGV`` through the real entry point (expected errors -> one line, exit 1)."""
    from shelfwise.cli import cli, main

    assert "digest" in cli.commands, (
        "shelfwise/cli.py has no `digest` command yet (paste it from the digest report)"
    )
    capsys.readouterr()
    try:
        main(list(argv))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return Run(code, out, err)


def parse_cli(argv: list[str]) -> tuple[str, dict]:
    """Parse ``argv`` exactly as ``shelfwise`` would, without running it: (subcommand, its params).

    Raises click.UsageError (unknown options, bad choices, missing files...) like the real CLI.
    """
    from shelfwise.cli import cli

    at = next((i for i, a in enumerate(argv) if a in cli.commands), None)
    if at is None:
        raise click.UsageError(f"no shelfwise subcommand in {argv}")
    parent = cli.make_context("shelfwise", argv[: at + 1])
    command = cli.commands[argv[at]]
    ctx = command.make_context(argv[at], argv[at + 1 :], parent=parent)
    return argv[at], ctx.params


# ====================================================================== favourites, seed, settings


def test_read_favourites_accepts_json_and_lines(tmp_path: Path) -> None:
    as_json = tmp_path / "f.json"
    as_json.write_text(json.dumps(["The Hobbit", "  Twilight ", ""]), encoding="utf-8")
    assert mail.read_favourites(as_json) == ["The Hobbit", "Twilight"]
    lines = tmp_path / "f.txt"
    lines.write_bytes("\ufeff# comment\nThe Hobbit\n\n  Angels & Demons  \n".encode())
    assert mail.read_favourites(lines) == ["The Hobbit", "Angels & Demons"]
    for bad, why in (
        ('["a", 1]', "list of title strings"),
        ('{"a": 1}', "list of title strings"),
        ("[oops", "invalid JSON"),
        ("# only a comment\n", "no titles"),
    ):
        lines.write_text(bad, encoding="utf-8")
        with pytest.raises(ShelfwiseError, match=re.escape(why)):
            mail.read_favourites(lines)
    with pytest.raises(ShelfwiseError, match="cannot read"):
        mail.read_favourites(tmp_path / "missing.txt")


def test_digest_files_into_an_unwritable_place_are_a_one_line_error(tmp_path: Path) -> None:
    from email.message import EmailMessage

    message = EmailMessage()
    message.set_content("hello")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(
        ShelfwiseError, match=re.escape(f"cannot write the digest to {blocker / 'sub'}")
    ):
        mail.write_message(message, blocker / "sub")


def test_week_seed_is_constant_within_an_iso_week() -> None:
    monday = date(2025, 12, 29)  # ISO 2026-W01
    assert mail.week_seed(monday) == 202601
    assert {mail.week_seed(monday + timedelta(days=d)) for d in range(7)} == {202601}
    assert mail.week_seed(monday + timedelta(days=7)) == 202602


def test_smtp_settings_from_env_defaults_validation_and_secrecy() -> None:
    base = {
        "SHELFWISE_SMTP_HOST": "mail.example.org",
        "SHELFWISE_MAIL_FROM": "a@example.org",
        "SHELFWISE_MAIL_TO": "b@example.org, C <c@example.org>",
    }
    s = mail.SmtpSettings.from_env(base)
    assert (s.host, s.port, s.security, s.mail_to, s.user, s.password) == (
        "mail.example.org",
        587,
        "starttls",
        ("b@example.org", "c@example.org"),
        None,
        None,
    )
    assert mail.SmtpSettings.from_env({**base, "SHELFWISE_SMTP_SECURITY": "SSL"}).port == 465
    assert (
        mail.SmtpSettings.from_env(
            {**base, "SHELFWISE_SMTP_SECURITY": "none", "SHELFWISE_SMTP_PORT": "2525"}
        ).port
        == 2525
    )
    secret = mail.SmtpSettings.from_env(
        {**base, "SHELFWISE_SMTP_USER": USER, "SHELFWISE_SMTP_PASSWORD": PASSWORD}
    )
    assert PASSWORD not in repr(secret) and PASSWORD not in str(secret)
    assert PASSWORD not in secret.redact(
        f"echo {PASSWORD} and AUTH PLAIN "
        + base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode()
    )
    bad_cases = [
        ({}, "SHELFWISE_SMTP_HOST, SHELFWISE_MAIL_FROM, SHELFWISE_MAIL_TO"),
        ({**base, "SHELFWISE_SMTP_SECURITY": "tls"}, "starttls, ssl or none"),
        ({**base, "SHELFWISE_SMTP_PORT": "smtp"}, "port number"),
        ({**base, "SHELFWISE_SMTP_PORT": "70000"}, "1..65535"),
        (
            {**base, "SHELFWISE_SMTP_PASSWORD": PASSWORD},
            "both SHELFWISE_SMTP_USER and SHELFWISE_SMTP_PASSWORD",
        ),
        ({**base, "SHELFWISE_MAIL_TO": "nobody"}, "SHELFWISE_MAIL_TO"),
        (
            {**base, "SHELFWISE_SMTP_TIMEOUT": "0"},
            "SHELFWISE_SMTP_TIMEOUT must be a positive number of seconds, not '0'",
        ),
        ({**base, "SHELFWISE_SMTP_TIMEOUT": "-5"}, "positive number of seconds"),
        ({**base, "SHELFWISE_SMTP_TIMEOUT": "nan"}, "positive number of seconds"),
    ]
    for env, message in bad_cases:
        with pytest.raises(ShelfwiseError, match=re.escape(message)) as caught:
            mail.SmtpSettings.from_env(env)
        assert PASSWORD not in str(caught.value)


# ====================================================================== count_genre (known answer)


def test_count_genre_matches_tag_substrings_case_insensitively() -> None:
    con = duckdb.connect()
    con.execute("create schema core")
    con.execute("create table core.books (book_key bigint, top_tags varchar[])")
    con.execute(
        """insert into core.books values
           (1, ['legal-thriller', 'fiction']), (2, ['Mystery', 'crime']), (3, ['fantasy']),
           (4, []), (5, null), (6, ['true-crime']), (7, ['suspense'])"""
    )
    assert mail.count_genre(con, [1, 2, 3, 4, 5], ["thriller", "mystery"]) == 2
    assert (
        mail.count_genre(con, [1, 2, 3, 4, 5, 6, 7], mail.THRILLER_WORDS) == 4
    )  # 1, 2 (once, for two tags), 6, 7
    assert mail.count_genre(con, [3, 4, 5], mail.THRILLER_WORDS) == 0
    assert mail.count_genre(con, [], mail.THRILLER_WORDS) == 0
    assert mail.count_genre(con, [1, 99], ["THRILLER"]) == 1


# =================================================================== build_digest on the warehouse


def test_build_digest_is_reproducible_and_never_recommends_a_favourite(
    con: duckdb.DuckDBPyConnection,
) -> None:
    first = mail.build_digest(
        con, FAVOURITES, pick=3, n=8, kind="mf", rng=np.random.default_rng(7), history_weeks=8
    )
    again = mail.build_digest(
        con, FAVOURITES, pick=3, n=8, kind="mf", rng=np.random.default_rng(7), history_weeks=8
    )
    assert [b.book_key for b in first.picked] == [b.book_key for b in again.picked]
    assert first.book_keys == again.book_keys
    assert len(first.picked) == 3 and len(first.recommendations) == 8
    assert len(first.favourites) == len(FAVOURITES)
    favourite_keys = {b.book_key for b in first.favourites}
    for seed in range(6):  # whichever three are picked, no favourite of the whole list comes back
        d = mail.build_digest(
            con,
            FAVOURITES,
            pick=3,
            n=8,
            kind="mf",
            rng=np.random.default_rng(seed),
            history_weeks=8,
        )
        assert not favourite_keys & set(d.book_keys)
        assert {r.closest.book_key for r in d.recommendations} <= {b.book_key for b in d.picked}
        assert [r.rank for r in d.recommendations] == list(range(1, 9))
    picks = {
        tuple(
            b.book_key
            for b in mail.build_digest(
                con,
                FAVOURITES,
                pick=3,
                n=2,
                kind="mf",
                rng=np.random.default_rng(s),
                history_weeks=0,
            ).picked
        )
        for s in range(8)
    }
    assert len(picks) > 1, "the seed must change which favourites are picked"


def test_unknown_and_ambiguous_titles_are_reported_and_skipped(
    con: duckdb.DuckDBPyConnection,
) -> None:
    ambiguous = "the"  # a substring of many titles
    d = mail.build_digest(
        con,
        [UNKNOWN, *DAN_BROWN, ambiguous],
        pick=5,
        n=5,
        kind="mf",
        rng=np.random.default_rng(0),
        history_weeks=8,
    )
    assert [e.query for e in d.unresolved] == [UNKNOWN, ambiguous]
    unknown, amb = d.unresolved
    assert (
        isinstance(unknown, TitleNotFound)
        and not unknown.ambiguous
        and len(unknown.candidates) == 5
    )
    assert amb.ambiguous and len(amb.candidates) > 1
    assert sorted(re.sub(r"\s*\(.*\)$", "", b.title) for b in d.picked) == sorted(DAN_BROWN)
    assert len(d.recommendations) == 5
    text = mail.render_text(d)
    assert UNKNOWN in text and "did you mean" in text
    with pytest.raises(ShelfwiseError, match="none of the 2 favourite titles"):
        mail.build_digest(
            con,
            [UNKNOWN, "Another Qqqq Missing"],
            pick=3,
            n=5,
            kind="mf",
            rng=np.random.default_rng(0),
            history_weeks=8,
        )


def test_history_excludes_recent_digests_only(con: duckdb.DuckDBPyConnection) -> None:
    now = datetime(2030, 1, 7, 6, 30)

    def build(history_weeks: int, at: datetime) -> mail.Digest:
        return mail.build_digest(
            con,
            DAN_BROWN,
            pick=3,
            n=8,
            kind="mf",
            rng=np.random.default_rng(1),
            history_weeks=history_weeks,
            now=at,
        )

    first = build(8, now)
    digest_id = mail.record(con, first, ["reader@example.org"], sent_at=now)
    assert digest_id == 1
    rows = con.execute(
        """select rank, book_key, closest_key, recipient, run_id, kind, favourites
           from models.digests order by rank"""
    ).fetchall()
    assert [(r[0], r[1]) for r in rows] == list(enumerate(first.book_keys, 1))
    assert (
        {r[3] for r in rows} == {"reader@example.org"}
        and {r[4] for r in rows} == {first.run_id}
        and {r[5] for r in rows} == {"mf"}
    )
    assert [f["book_key"] for f in json.loads(rows[0][6])] == [b.book_key for b in first.picked]

    week_later = build(8, now + timedelta(weeks=1))
    assert not set(first.book_keys) & set(week_later.book_keys)
    assert set(week_later.history_excluded) == set(first.book_keys)
    assert (
        build(0, now + timedelta(weeks=1)).book_keys == first.book_keys
    )  # no history window: same books
    # The 8th weekly digest back still counts, even when this week's timer fires a little later.
    assert not set(first.book_keys) & set(build(8, now + timedelta(weeks=8, minutes=10)).book_keys)
    assert (
        build(8, now + timedelta(weeks=9)).book_keys == first.book_keys
    )  # sent too long ago to matter


def test_thriller_favourites_get_thrillers(con: duckdb.DuckDBPyConnection) -> None:
    """The acceptance figure on small data: the Dan Brown digest holds >= 3 thrillers/mysteries,
    unlike Tolkien's."""
    thrillers = mail.build_digest(
        con, DAN_BROWN, pick=3, n=8, kind="als", rng=np.random.default_rng(0), history_weeks=0
    )
    fantasy = mail.build_digest(
        con, TOLKIEN, pick=3, n=8, kind="als", rng=np.random.default_rng(0), history_weeks=0
    )
    n_thrillers = mail.count_genre(con, thrillers.book_keys, mail.THRILLER_WORDS)
    assert n_thrillers >= 3
    assert n_thrillers > mail.count_genre(con, fantasy.book_keys, mail.THRILLER_WORDS)


# ============================================================================= rendering


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.imgs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "a" and a.get("href"):
            self.hrefs.append(a["href"] or "")
        if tag == "img" and a.get("src"):
            self.imgs.append(a["src"] or "")


def _book(key: int, title: str, authors: str, gr: int | None, image: str | None) -> Book:
    return Book(key, key, title, authors, 0.9, image, gr)


def test_render_has_text_and_html_parts_with_every_book_escaped() -> None:
    fav_a = _book(1, "Angels & Demons", "Dan Brown", 960, None)
    fav_b = _book(2, "Digital Fortress", "Dan Brown", 11125, None)
    recs = (
        mail.Recommendation(
            1,
            _book(10, "<Deception> Point", "Dan Brown", 976, "https://images.example/976.jpg"),
            fav_b,
        ),
        mail.Recommendation(
            2, _book(11, "The Lost Symbol", "Dan Brown & Co", 6411961, "javascript:alert(1)"), fav_a
        ),
    )
    d = mail.Digest(
        run_id=4,
        kind="mf",
        picked=(fav_a, fav_b),
        favourites=(fav_a, fav_b),
        recommendations=recs,
        unresolved=(TitleNotFound("Inferno?", ["Inferno (Dan Brown)"], ambiguous=False),),
        created_at=datetime(2030, 1, 7, 6, 30),
    )
    message = mail.render(d, sender="digest@example.org", recipients=["reader@example.org"])
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    assert message["Subject"] == "Shelfwise digest 2030-W02: 2 books for you"
    assert (message["From"], message["To"]) == ("digest@example.org", "reader@example.org")
    text = message.get_body(("plain",)).get_content()
    page = message.get_body(("html",)).get_content()
    assert "1. <Deception> Point by Dan Brown" in text and "closest to: Digital Fortress" in text
    assert (
        "https://www.goodreads.com/book/show/976" in text
        and "Cover: https://images.example/976.jpg" in text
    )
    assert "2. The Lost Symbol by Dan Brown & Co" in text and "closest to: Angels & Demons" in text
    assert "javascript:" not in text and "javascript:" not in page
    assert (
        "&lt;Deception&gt; Point" in page
        and "<Deception>" not in page
        and "Dan Brown &amp; Co" in page
    )
    links = _Links()
    links.feed(page)
    assert [h for h in links.hrefs if "goodreads.com" in h] == [
        "https://www.goodreads.com/book/show/976",
        "https://www.goodreads.com/book/show/976",
        "https://www.goodreads.com/book/show/6411961",
        "https://www.goodreads.com/book/show/6411961",
    ]
    assert (
        links.imgs == ["https://images.example/976.jpg"]
        and "https://images.example/976.jpg" in links.hrefs
    )
    assert "Inferno?" in text and "Inferno?" in page


# ============================================================================= sending via the CLI


def _common(db: Path, favourites_file: Path, *extra: str) -> list[str]:
    return [
        "digest",
        "--favorites",
        str(favourites_file),
        "--db",
        str(db),
        "--seed",
        "5",
        "--n",
        "6",
        *extra,
    ]


def _assert_secret_absent(*texts: str) -> None:
    b64 = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode()
    for t in texts:
        assert PASSWORD not in t and b64 not in t


def test_send_delivers_multipart_message_and_records_it(
    db: Path, favourites_file: Path, tmp_path: Path, smtp_server, smtp_env, capsys
) -> None:
    server = smtp_server()
    smtp_env(server.port)
    out_dir = tmp_path / "out"
    run = run_cli(capsys, "-v", *_common(db, favourites_file, "--send", "--out", str(out_dir)))
    assert run.code == 0, run.err
    _assert_secret_absent(run.out, run.err)
    assert "sent digest 1 (6 books, seed 5) to reader@example.org, second@example.org" in run.out
    assert f"skipped favourite: title '{UNKNOWN}' matches no book" in run.err

    assert len(server.received) == 1
    got = server.received[0]
    assert got.login == USER.encode()
    assert got.mail_from == "digest@example.org" and got.rcpt_tos == [
        "reader@example.org",
        "second@example.org",
    ]
    message = got.message
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    assert (
        "Shelfwise <digest@example.org>" in message["From"]
        and "second@example.org" in message["To"]
    )

    rows = history(db)
    assert [(r[0], r[1]) for r in rows] == [(1, i) for i in range(1, 7)]
    assert {r[3] for r in rows} == {"reader@example.org, second@example.org"}
    with connect(db, read_only=True) as c:
        sent = c.execute(
            """select b.title, b.goodreads_book_id from models.digests as d
               inner join core.books as b on b.book_key = d.book_key order by d.rank"""
        ).fetchall()
    text = message.get_body(("plain",)).get_content()
    assert re.findall(r"^\d+\. (.+?)(?: by .*)?$", text, flags=re.M) == [t for t, _ in sent]
    links = _Links()
    links.feed(message.get_body(("html",)).get_content())
    listed = list(
        dict.fromkeys(
            int(h.rsplit("/", 1)[1]) for h in links.hrefs if "goodreads.com/book/show/" in h
        )
    )
    assert listed == [g for _, g in sent]
    assert sorted(p.name for p in out_dir.iterdir()) == ["digest.eml", "digest.html", "digest.txt"]
    assert (out_dir / "digest.txt").read_text(encoding="utf-8") == text.replace(
        "\r\n", "\n"
    )  # the wire has CRLF
    _assert_secret_absent(*(p.read_text(encoding="utf-8") for p in out_dir.iterdir()))


def test_second_digest_repeats_none_of_the_first(
    db: Path, favourites_file: Path, smtp_server, smtp_env, capsys
) -> None:
    server = smtp_server()
    smtp_env(server.port)
    for _ in range(2):  # same seed, so the same favourites are picked: only the history can differ
        run = run_cli(capsys, *_common(db, favourites_file, "--send"))
        assert run.code == 0, run.err
    rows = history(db)
    first = {r[2] for r in rows if r[0] == 1}
    second = {r[2] for r in rows if r[0] == 2}
    assert len(first) == len(second) == 6 and not first & second
    assert len(server.received) == 2


@pytest.mark.parametrize(
    "failure, expected",
    [
        ("data", "server answered 550 5.7.1 Message rejected as spam"),
        ("login", "login refused (535"),
        ("closed", "connection refused"),
        ("starttls", "STARTTLS extension not supported by server. (check SHELFWISE_SMTP_SECURITY)"),
        (
            "recipients",
            "every recipient was refused: reader@example.org (550 5.1.1 No such user); "
            "second@example.org (550",
        ),
    ],
)
def test_failed_send_exits_nonzero_records_nothing_and_hides_the_password(
    failure: str,
    expected: str,
    db: Path,
    favourites_file: Path,
    smtp_server,
    smtp_env,
    monkeypatch,
    capsys,
) -> None:
    if failure == "closed":
        port = _free_port()  # nothing listens there
    else:
        server = smtp_server(
            data_reply="550 5.7.1 Message rejected as spam" if failure == "data" else None,
            accept_login=failure != "login",
            refuse=("reader@example.org", "second@example.org") if failure == "recipients" else (),
        )
        port = server.port
    smtp_env(port)
    if failure == "starttls":
        monkeypatch.setenv(
            "SHELFWISE_SMTP_SECURITY", "starttls"
        )  # the test server offers no STARTTLS
    with connect(db) as c:
        mail.ensure_history(c)  # an existing, empty history must stay empty
    before = history(db)

    run = run_cli(capsys, *_common(db, favourites_file, "--send"))
    assert run.code == 1
    error_lines = [line for line in run.err.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and expected in error_lines[0], run.err
    assert f"127.0.0.1:{port}" in error_lines[0]
    _assert_secret_absent(run.out, run.err)
    assert history(db) == before
    if failure != "closed":
        assert server.received == []

    # With -v the error is re-raised for its traceback: still no password in it.
    from shelfwise.cli import main

    with pytest.raises(mail.DigestSendError) as caught:
        main(["-v", *_common(db, favourites_file, "--send")])
    out, err = capsys.readouterr()
    _assert_secret_absent(out, err, "".join(traceback.format_exception(caught.value)))
    assert history(db) == before


def test_partly_refused_recipients_record_who_got_it_and_exit_nonzero(
    db: Path, favourites_file: Path, smtp_server, smtp_env, capsys
) -> None:
    server = smtp_server(refuse=("second@example.org",))
    smtp_env(server.port)
    run = run_cli(capsys, *_common(db, favourites_file, "--send"))
    assert run.code == 1
    assert "error: the server refused second@example.org; the others got digest 1" in run.err
    assert "the server refused recipient second@example.org: 550 5.1.1 No such user" in run.err
    assert [r.rcpt_tos for r in server.received] == [["reader@example.org"]]
    rows = history(db)
    assert len(rows) == 6 and {r[3] for r in rows} == {"reader@example.org"}


def test_dry_run_neither_sends_nor_records(
    db: Path, favourites_file: Path, smtp_server, smtp_env, capsys
) -> None:
    server = smtp_server()
    smtp_env(server.port)
    run = run_cli(capsys, *_common(db, favourites_file, "--send", "--dry-run"))
    assert run.code == 0, run.err
    assert re.findall(r"^\d+\. ", run.out, flags=re.M) == [f"{i}. " for i in range(1, 7)]
    assert "not sent (--dry-run)" in run.out
    assert server.received == [] and history(db) == []


def test_send_without_settings_names_the_missing_variables(
    db: Path, favourites_file: Path, monkeypatch, capsys
) -> None:
    for name in ("SHELFWISE_SMTP_HOST", "SHELFWISE_MAIL_FROM", "SHELFWISE_MAIL_TO"):
        monkeypatch.delenv(name, raising=False)
    run = run_cli(capsys, *_common(db, favourites_file, "--send"))
    assert run.code == 1 and "cannot send: set SHELFWISE_SMTP_HOST" in run.err
    assert history(db) == []


def test_only_unknown_titles_is_an_error(db: Path, tmp_path: Path, capsys) -> None:
    f = tmp_path / "f.json"
    f.write_text(json.dumps([UNKNOWN]), encoding="utf-8")
    run = run_cli(capsys, *_common(db, f))
    assert run.code == 1
    # Without --model a favourites digest uses the best published neighbours model.
    kind = shelfwise.open(db).default_model("neighbours")
    assert (
        f"none of the 1 favourite titles matches one book of the {kind} model: "
        f"title '{UNKNOWN}' matches no book" in run.err
    )


# ============================================================================= scheduling files


ENV_FILE = "/etc/shelfwise/digest.env"
FAVOURITES_PATH = "/etc/shelfwise/favourites.txt"

_CRON_RANGES = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]
_DAYS = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}


def _cron_field_ok(text: str, lo: int, hi: int, names: dict[str, int] | None = None) -> bool:
    for part in text.split(","):
        base, _, step = part.partition("/")
        if step and not (step.isdigit() and int(step) > 0):
            return False
        if base == "*":
            continue
        ends = base.split("-")
        if len(ends) > 2:
            return False
        for e in ends:
            value = (names or {}).get(e.lower(), int(e) if e.isdigit() else None)
            if value is None or not lo <= value <= hi:
                return False
    return True


def cron_jobs(path: Path) -> list[tuple[list[str], str, str]]:
    """(five schedule fields, user, command) of each job line of an /etc/cron.d file."""
    jobs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        s = line.strip()
        if not s or s.startswith("#") or re.match(r"^[A-Za-z_][A-Za-z0-9_]*\s*=", s):
            continue
        fields = s.split(None, 6)
        assert len(fields) == 7, f"not a cron.d job line (schedule, user, command): {line!r}"
        jobs.append((fields[:5], fields[5], fields[6]))
    return jobs


def shelfwise_argvs(commands: list[list[str]]) -> list[list[str]]:
    return [argv[1:] for argv in commands if argv and Path(argv[0]).name == "shelfwise"]


def systemd_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """Sections -> key -> every value in order (systemd repeats keys; configparser cannot)."""
    unit: dict[str, dict[str, list[str]]] = {}
    section = None
    for line in path.read_text(encoding="utf-8").splitlines():
        s = line.strip()
        if not s or s[0] in "#;":
            continue
        if s.startswith("[") and s.endswith("]"):
            section = unit.setdefault(s[1:-1], {})
            continue
        key, sep, value = s.partition("=")
        assert sep and section is not None, (
            f"{path.name}: not a key=value line in a section: {line!r}"
        )
        section.setdefault(key.strip(), []).append(value.strip())
    return unit


def _check_invocations(argvs: list[list[str]], favourites: Path) -> None:
    """The scheduled commands are `refresh` then `digest --send`, and the real CLI accepts both."""
    assert [parse_cli(_local(a, favourites))[0] for a in argvs] == ["refresh", "digest"]
    _, digest_params = parse_cli(_local(argvs[1], favourites))
    assert digest_params["send"] and not digest_params["dry_run"]
    assert argvs[1][argvs[1].index("--favorites") + 1] == FAVOURITES_PATH


def _local(argv: list[str], favourites: Path) -> list[str]:
    # The production favourites file does not exist here; click checks that the path exists.
    return [str(favourites) if a == FAVOURITES_PATH else a for a in argv]


def test_cron_entry_runs_refresh_then_digest_weekly(
    db: Path, favourites_file: Path, capsys
) -> None:
    jobs = cron_jobs(DEPLOY / "shelfwise-digest.cron")
    assert len(jobs) == 1
    schedule, user, command = jobs[0]
    for text, (lo, hi), names in zip(
        schedule, _CRON_RANGES, [None, None, None, None, _DAYS], strict=True
    ):
        assert _cron_field_ok(text, lo, hi, names), f"bad cron field {text!r}"
    assert schedule[2] == schedule[3] == "*" and re.fullmatch(
        r"[0-7]|mon|tue|wed|thu|fri|sat|sun", schedule[4], re.I
    ), "weekly: one weekday"
    assert user == "shelfwise"
    assert "%" not in command, "cron turns % into a newline"
    steps = [shlex.split(step) for step in command.split(" && ")]
    assert steps[0] == ["cd", "/opt/shelfwise"] and [".", ENV_FILE] in steps
    argvs = shelfwise_argvs(steps)
    assert [s for s in steps if s and Path(s[0]).name == "shelfwise"] == [s for s in steps[-2:]], (
        "refresh and digest come last"
    )
    _check_invocations(argvs, favourites_file)
    # The digest line itself runs against a real warehouse when made a dry run.
    run = run_cli(capsys, *_local(argvs[1], favourites_file), "--dry-run", "--db", str(db))
    assert run.code == 0, run.err
    assert re.findall(r"^\d+\. ", run.out, flags=re.M) == [f"{i}. " for i in range(1, 9)]
    assert history(db) == []


def test_systemd_service_and_timer(favourites_file: Path) -> None:
    service = systemd_unit(DEPLOY / "shelfwise-digest.service")
    timer = systemd_unit(DEPLOY / "shelfwise-digest.timer")
    svc = service["Service"]
    assert (
        svc["Type"] == ["oneshot"]
        and svc["User"] == ["shelfwise"]
        and svc["WorkingDirectory"] == ["/opt/shelfwise"]
    )
    assert svc["EnvironmentFile"] == [ENV_FILE]
    commands = [shlex.split(c) for c in svc["ExecStart"]]
    assert all(c[0] == "/opt/shelfwise/.venv/bin/shelfwise" for c in commands)
    _check_invocations(shelfwise_argvs(commands), favourites_file)
    # cron and systemd run the same two commands
    cron_cmd = cron_jobs(DEPLOY / "shelfwise-digest.cron")[0][2]
    cron_argvs = shelfwise_argvs([shlex.split(s) for s in cron_cmd.split(" && ")])
    assert cron_argvs == shelfwise_argvs(commands)
    t = timer["Timer"]
    assert t["Unit"] == ["shelfwise-digest.service"] and t["Persistent"] == ["true"]
    assert re.fullmatch(
        r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun) \*-\*-\* \d\d:\d\d(:\d\d)?", t["OnCalendar"][0]
    )
    assert timer["Install"]["WantedBy"] == ["timers.target"]


def test_systemd_analyze_verifies_the_units(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    executable = Path(sys.executable).parent / "shelfwise"
    assert executable.exists(), f"no shelfwise console script next to {sys.executable}"
    env_file = tmp_path / "digest.env"
    env_file.write_text("SHELFWISE_SMTP_HOST=127.0.0.1\n", encoding="utf-8")
    # Verify the real files with the production paths swapped for ones that exist on this machine.
    for name in ("shelfwise-digest.service", "shelfwise-digest.timer"):
        text = (DEPLOY / name).read_text(encoding="utf-8")
        text = text.replace("/opt/shelfwise/.venv/bin/shelfwise", str(executable)).replace(
            ENV_FILE, str(env_file)
        )
        text = text.replace("/opt/shelfwise", str(REPO))
        (tmp_path / name).write_text(text, encoding="utf-8")
    calendar = subprocess.run(
        [
            analyze,
            "calendar",
            systemd_unit(DEPLOY / "shelfwise-digest.timer")["Timer"]["OnCalendar"][0],
        ],
        capture_output=True,
        text=True,
    )
    assert calendar.returncode == 0, calendar.stderr
    result = subprocess.run(
        [analyze, "verify", "--man=no", "shelfwise-digest.service", "shelfwise-digest.timer"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0 and "shelfwise-digest" not in result.stderr, result.stderr


def test_commands_in_the_docs_are_valid(favourites_file: Path) -> None:
    doc = (REPO / "docs" / "digest.md").read_text(encoding="utf-8")
    lines = [m.group(1) for m in re.finditer(r"^\s*(?:\$ )?(shelfwise [^\n]+)$", doc, flags=re.M)]
    assert len(lines) >= 4
    for line in lines:
        argv = shlex.split(line.split(" #")[0])[1:]
        argv = [
            str(favourites_file) if a.endswith(("favourites.txt", "favourites.json")) else a
            for a in argv
        ]
        parse_cli(argv)
