"""`shelfwise dashboard`: waitress with the options given, a warning beyond loopback, serving."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import dashboards.server
from dashboards.app import DashboardSettings, create_app
from dashboards.server import is_loopback, make_server
from shelfwise.cli import main


class FakeServer:
    effective_port = 8050

    def __init__(self) -> None:
        self.ran = self.closed = False

    def run(self) -> None:
        self.ran = True

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    """What `shelfwise dashboard` asked make_server for (the server itself is a fake)."""
    calls: list[tuple] = []

    def fake(app, host, port, *, threads):
        server = FakeServer()
        calls.append((app, host, port, threads, server))
        return server

    monkeypatch.setattr(dashboards.server, "make_server", fake)
    return calls


def test_the_command_serves_with_waitress_options_and_warns_beyond_loopback(
    started, tmp_path: Path, capsys
) -> None:
    db = tmp_path / "w.duckdb"
    main(["dashboard", "--db", str(db), "--threads", "3", "--no-covers", "--port", "8123"])
    app, host, port, threads, server = started[-1]
    assert (host, port, threads) == ("127.0.0.1", 8123, 3)
    assert server.ran and server.closed
    settings = app.server.config["SHELFWISE_DASHBOARD"]
    assert settings.covers is False and settings.db_path == db
    assert "Warning" not in capsys.readouterr().err

    main(["dashboard", "--db", str(db), "--host", "0.0.0.0", "--request-seconds", "3"])
    assert started[-1][1] == "0.0.0.0"
    assert started[-1][0].server.config["SHELFWISE_DASHBOARD"].request_seconds == 3
    err = " ".join(capsys.readouterr().err.split())
    assert "Warning: listening on 0.0.0.0" in err and "reverse proxy with authentication" in err


def test_loopback_hosts() -> None:
    for host in ("127.0.0.1", "127.5.5.5", "localhost", "::1", "[::1]"):
        assert is_loopback(host), host
    for host in ("0.0.0.0", "::", "192.168.1.4", "example.org"):
        assert not is_loopback(host), host


def test_waitress_serves_pages_and_caps_bodies(published_warehouse: Path) -> None:
    server = make_server(create_app(DashboardSettings(db_path=published_warehouse)), threads=2)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.effective_port}"
    try:
        with urllib.request.urlopen(f"{base}/embeddings", timeout=30) as response:
            assert response.status == 200
            assert response.headers["Server"] == "shelfwise"
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(urllib.request.Request(f"{base}/", data=b"x"), timeout=30)
        assert info.value.code == 413
    finally:
        server.close()
        thread.join(timeout=10)
