"""warehouse.download against a real HTTP server on 127.0.0.1 (no other network)."""

from __future__ import annotations

import hashlib
import logging
import re
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import pytest

from base.errors import ShelfwiseError
from warehouse import download
from warehouse.download import GOODBOOKS_FILES, RemoteFile, download_files, download_goodbooks
from warehouse.sources import GOODBOOKS


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# A broken downloader that retries forever gets a 404 (and fails fast) instead of hanging the suite.
MAX_REQUESTS = 20


class FileServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, handler: type[BaseHTTPRequestHandler], files: dict[str, bytes]) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.files = dict(files)
        self.requests: list[dict[str, str | None]] = []
        self.lock = threading.Lock()

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


class RangeHandler(BaseHTTPRequestHandler):
    """Serves ``server.files``; honours ``Range: bytes=N-`` and ``If-Range`` (by ETag)."""

    protocol_version = "HTTP/1.1"
    honour_range = True
    server: FileServer

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        name = unquote(self.path.lstrip("/"))
        with self.server.lock:
            self.server.requests.append(
                {
                    "path": name,
                    "range": self.headers.get("Range"),
                    "if_range": self.headers.get("If-Range"),
                }
            )
            number = len(self.server.requests)
            body = self.server.files.get(name)
        if body is None or number > MAX_REQUESTS:
            self.send_error(404, "Not Found")
            return
        etag = f'"{sha(body)[:16]}"'
        start, status = 0, 200
        requested = self.headers.get("Range")
        if_range = self.headers.get("If-Range")
        if requested and self.honour_range and (if_range is None or if_range == etag):
            start = int(re.fullmatch(r"bytes=(\d+)-", requested).group(1))
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        payload = self.transform(body)[start:]
        self.send_response(status)
        self.send_header("Content-Type", "text/csv")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("ETag", etag)
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.end_headers()
        self.write_body(payload, number)

    def transform(self, body: bytes) -> bytes:
        return body

    def write_body(self, payload: bytes, number: int) -> None:
        self.wfile.write(payload)


class DropFirstHandler(RangeHandler):
    """The first request gets its headers and half the body, then the connection is closed."""

    drop: Callable[[int], bool] = staticmethod(lambda number: number == 1)

    def write_body(self, payload: bytes, number: int) -> None:
        if self.drop(number):
            self.wfile.write(payload[: len(payload) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
        else:
            self.wfile.write(payload)


class DropTwiceHandler(DropFirstHandler):
    drop = staticmethod(lambda number: number <= 2)


class IgnoreRangeHandler(RangeHandler):
    honour_range = False


class IgnoreRangeAlwaysDropHandler(DropFirstHandler):
    honour_range = False
    drop = staticmethod(lambda number: True)


class CorruptHandler(RangeHandler):
    def transform(self, body: bytes) -> bytes:
        return body[:10] + bytes([body[10] ^ 0xFF]) + body[11:]


class Flaky503Handler(RangeHandler):
    def do_GET(self) -> None:
        if not self.server.requests:
            with self.server.lock:
                self.server.requests.append({"path": self.path, "range": None, "if_range": None})
            self.send_error(503, "Service Unavailable")
            return
        super().do_GET()


@pytest.fixture
def serve() -> Iterator[Callable[..., FileServer]]:
    servers: list[tuple[FileServer, threading.Thread]] = []

    def start(handler: type[BaseHTTPRequestHandler], files: dict[str, bytes]) -> FileServer:
        server = FileServer(handler, files)
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        thread.start()
        servers.append((server, thread))
        return server

    yield start
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(download, "_BACKOFF_SECONDS", 0.0)


@pytest.fixture
def body() -> bytes:
    # ~200 KB: several read chunks, so "halfway" really is mid-stream.
    return b"user_id,book_id,rating\n" + b"".join(
        f"{i},{i % 977 + 1},{i % 5 + 1}\n".encode() for i in range(20_000)
    )


def remote(name: str, data: bytes | None, pinned: bool = True) -> RemoteFile:
    # The URL's host must never be contacted: base_url replaces its directory.
    return RemoteFile(
        name,
        f"https://example.invalid/data/{name}",
        sha(data) if pinned and data is not None else None,
    )


def test_fresh_download_gives_identical_bytes(serve, tmp_path: Path, body: bytes) -> None:
    server = serve(RangeHandler, {"ratings.csv": body, "tags.csv": b"tag_id,tag_name\n0,-\n"})
    files = [remote("ratings.csv", body), remote("tags.csv", b"tag_id,tag_name\n0,-\n")]

    paths = download_files(files, tmp_path / "out", base_url=server.base_url, progress=False)

    assert paths == [tmp_path / "out" / "ratings.csv", tmp_path / "out" / "tags.csv"]
    assert paths[0].read_bytes() == body
    assert sha(paths[1].read_bytes()) == files[1].sha256
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "ratings.csv",
        "tags.csv",
    ]  # no .part, no sidecar
    assert [r["range"] for r in server.requests] == [None, None]


def test_progress_bar_does_not_break_download(serve, tmp_path: Path, body: bytes) -> None:
    server = serve(RangeHandler, {"ratings.csv": body})
    [path] = download_files(
        [remote("ratings.csv", body)], tmp_path, base_url=server.base_url + "/", progress=True
    )
    assert path.read_bytes() == body


def test_interrupted_download_keeps_part_and_next_call_resumes(
    serve, tmp_path: Path, body: bytes
) -> None:
    server = serve(DropFirstHandler, {"ratings.csv": body})
    files = [remote("ratings.csv", body)]
    final, part = tmp_path / "ratings.csv", tmp_path / "ratings.csv.part"

    with pytest.raises(ShelfwiseError) as info:
        download_files(files, tmp_path, base_url=server.base_url, progress=False, retries=0)

    message = str(info.value)
    assert "\n" not in message and f"{server.base_url}/ratings.csv" in message
    assert not final.exists()
    assert part.read_bytes() == body[: len(body) // 2]

    [path] = download_files(files, tmp_path, base_url=server.base_url, progress=False, retries=0)

    assert path.read_bytes() == body
    assert not part.exists() and not (tmp_path / "ratings.csv.part.etag").exists()
    assert len(server.requests) == 2
    assert server.requests[1]["range"] == f"bytes={len(body) // 2}-"
    assert server.requests[1]["if_range"] == f'"{sha(body)[:16]}"'


def test_dropped_connection_is_retried_within_one_call(serve, tmp_path: Path, body: bytes) -> None:
    server = serve(DropFirstHandler, {"ratings.csv": body})
    [path] = download_files(
        [remote("ratings.csv", body)], tmp_path, base_url=server.base_url, progress=False, retries=1
    )
    assert path.read_bytes() == body
    assert [r["range"] for r in server.requests] == [None, f"bytes={len(body) // 2}-"]


def test_attempts_that_make_progress_do_not_use_up_retries(
    serve, tmp_path: Path, body: bytes
) -> None:
    server = serve(DropTwiceHandler, {"ratings.csv": body})
    [path] = download_files(
        [remote("ratings.csv", body)], tmp_path, base_url=server.base_url, progress=False, retries=1
    )
    assert path.read_bytes() == body
    assert len(server.requests) == 3


def test_retries_end_when_restarts_make_no_progress(serve, tmp_path: Path, body: bytes) -> None:
    server = serve(IgnoreRangeAlwaysDropHandler, {"ratings.csv": body})
    with pytest.raises(ShelfwiseError, match="after 3 attempts"):
        download_files(
            [remote("ratings.csv", body)],
            tmp_path,
            base_url=server.base_url,
            progress=False,
            retries=2,
        )
    assert len(server.requests) == 3
    assert not (tmp_path / "ratings.csv").exists()


def test_resume_restarts_when_file_changed_on_server(serve, tmp_path: Path, body: bytes) -> None:
    server = serve(DropFirstHandler, {"ratings.csv": body})
    files = [remote("ratings.csv", body, pinned=False)]
    with pytest.raises(ShelfwiseError):
        download_files(files, tmp_path, base_url=server.base_url, progress=False, retries=0)
    new_body = body.replace(b",5\n", b",4\n")
    server.files["ratings.csv"] = new_body

    [path] = download_files(files, tmp_path, base_url=server.base_url, progress=False, retries=0)

    # If-Range carried the old ETag, so the server sent the whole new file rather than splicing.
    assert server.requests[1]["if_range"] == f'"{sha(body)[:16]}"'
    assert path.read_bytes() == new_body


def test_checksum_mismatch_raises_and_leaves_nothing(serve, tmp_path: Path, body: bytes) -> None:
    server = serve(CorruptHandler, {"books.csv": body})

    with pytest.raises(ShelfwiseError) as info:
        download_files(
            [remote("books.csv", body)], tmp_path, base_url=server.base_url, progress=False
        )

    message = str(info.value)
    assert "\n" not in message
    assert "books.csv" in message and sha(body) in message
    assert sha(CorruptHandler.transform(None, body)) in message  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_complete_file_is_not_fetched_again(serve, tmp_path: Path, body: bytes) -> None:
    server = serve(RangeHandler, {"ratings.csv": body})
    (tmp_path / "ratings.csv").write_bytes(body)

    [path] = download_files(
        [remote("ratings.csv", body)], tmp_path, base_url=server.base_url, progress=False
    )

    assert path.read_bytes() == body
    assert server.requests == []


def test_existing_file_with_wrong_checksum_is_replaced(serve, tmp_path: Path, body: bytes) -> None:
    server = serve(RangeHandler, {"ratings.csv": body})
    (tmp_path / "ratings.csv").write_bytes(b"stale")
    [path] = download_files(
        [remote("ratings.csv", body)], tmp_path, base_url=server.base_url, progress=False
    )
    assert path.read_bytes() == body
    assert len(server.requests) == 1


def test_unpinned_file_gets_sidecar_and_is_then_verified_by_it(
    serve, tmp_path: Path, body: bytes, caplog
) -> None:
    server = serve(RangeHandler, {"to_read.csv": body})
    files = [remote("to_read.csv", body, pinned=False)]
    sidecar = tmp_path / "to_read.csv.sha256"

    with caplog.at_level(logging.INFO, logger="warehouse.download"):
        download_files(files, tmp_path, base_url=server.base_url, progress=False)
    assert sidecar.read_text() == f"{sha(body)}  to_read.csv\n"
    assert sha(body) in caplog.text

    download_files(files, tmp_path, base_url=server.base_url, progress=False)
    assert len(server.requests) == 1  # second call: sidecar matched, nothing fetched

    (tmp_path / "to_read.csv").write_bytes(b"damaged")
    [path] = download_files(files, tmp_path, base_url=server.base_url, progress=False)
    assert path.read_bytes() == body and len(server.requests) == 2

    server.files["to_read.csv"] = body + b"1,2\n"  # upstream changed: the sidecar pin catches it
    (tmp_path / "to_read.csv").unlink()
    with pytest.raises(
        ShelfwiseError, match=r"checksum mismatch for to_read\.csv .*to_read\.csv\.sha256"
    ):
        download_files(files, tmp_path, base_url=server.base_url, progress=False)


def test_server_ignoring_range_still_gives_correct_bytes(
    serve, tmp_path: Path, body: bytes
) -> None:
    server = serve(IgnoreRangeHandler, {"ratings.csv": body})
    (tmp_path / "ratings.csv.part").write_bytes(
        b"X" * 5000
    )  # wrong bytes: must be thrown away, not appended to

    [path] = download_files(
        [remote("ratings.csv", body)], tmp_path, base_url=server.base_url, progress=False
    )

    assert path.read_bytes() == body
    assert server.requests[0]["range"] == "bytes=5000-"
    assert not (tmp_path / "ratings.csv.part").exists()


def test_part_that_is_already_complete_is_finished(serve, tmp_path: Path, body: bytes) -> None:
    server = serve(RangeHandler, {"ratings.csv": body})
    (tmp_path / "ratings.csv.part").write_bytes(
        body
    )  # crashed after the last byte, before the rename

    [path] = download_files(
        [remote("ratings.csv", body)], tmp_path, base_url=server.base_url, progress=False
    )

    assert path.read_bytes() == body
    assert [r["range"] for r in server.requests] == [f"bytes={len(body)}-"]


def test_part_longer_than_file_restarts(serve, tmp_path: Path, body: bytes) -> None:
    server = serve(RangeHandler, {"ratings.csv": body})
    (tmp_path / "ratings.csv.part").write_bytes(body + b"extra")
    [path] = download_files(
        [remote("ratings.csv", body)], tmp_path, base_url=server.base_url, progress=False
    )
    assert path.read_bytes() == body
    assert [r["range"] for r in server.requests] == [f"bytes={len(body) + 5}-", None]


def test_http_503_is_retried(serve, tmp_path: Path, body: bytes) -> None:
    server = serve(Flaky503Handler, {"ratings.csv": body})
    [path] = download_files(
        [remote("ratings.csv", body)], tmp_path, base_url=server.base_url, progress=False
    )
    assert path.read_bytes() == body and len(server.requests) == 2


def test_http_404_fails_at_once_with_one_line(serve, tmp_path: Path) -> None:
    server = serve(RangeHandler, {})
    with pytest.raises(ShelfwiseError) as info:
        download_files(
            [remote("missing.csv", b"")],
            tmp_path,
            base_url=server.base_url,
            progress=False,
            retries=3,
        )
    message = str(info.value)
    assert "\n" not in message and "404" in message and f"{server.base_url}/missing.csv" in message
    assert len(server.requests) == 1
    assert list(tmp_path.iterdir()) == []


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("retries", [0, 2])
def test_unreachable_port_raises_one_line_error(tmp_path: Path, retries: int) -> None:
    base_url = f"http://127.0.0.1:{_closed_port()}"
    with pytest.raises(ShelfwiseError) as info:
        download_files(
            [remote("ratings.csv", b"x")],
            tmp_path,
            base_url=base_url,
            progress=False,
            timeout=2,
            retries=retries,
        )
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"could not download {base_url}/ratings.csv: ")
    assert "refused" in message.lower()
    assert (f"after {retries + 1} attempts" in message) == (retries > 0)
    assert not (tmp_path / "ratings.csv").exists()


def test_non_http_base_url_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ShelfwiseError, match="only http and https"):
        download_files(
            [remote("ratings.csv", b"x")], tmp_path, base_url=f"file://{tmp_path}", progress=False
        )


def test_remote_file_validates_name_and_checksum() -> None:
    with pytest.raises(ValueError):
        RemoteFile("../ratings.csv", "https://example.invalid/ratings.csv", None)
    with pytest.raises(ValueError):
        RemoteFile("ratings.csv", "https://example.invalid/ratings.csv", "ABC")


def test_goodbooks_file_list_matches_the_loader() -> None:
    assert {f.name for f in GOODBOOKS_FILES} == {f"{spec.stem}.csv" for spec in GOODBOOKS}
    for f in GOODBOOKS_FILES:
        assert f.url == f"https://raw.githubusercontent.com/zygmuntz/goodbooks-10k/master/{f.name}"
    pinned = {f.name: f.sha256 for f in GOODBOOKS_FILES if f.sha256}
    assert pinned == {
        "books.csv": "4d21d0e0433128657c752e3a3d0405ac0ec11675d6c70c64cb0abf4ab1acb76a",
        "tags.csv": "87f316957564fa21c316a4f50afc87f07906f478f990eec027aaca00c536c449",
    }


def test_download_goodbooks_uses_base_url(
    serve, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    contents = {f.name: f"{f.name}\n1\n".encode() for f in GOODBOOKS_FILES}
    fake = tuple(
        RemoteFile(f.name, f.url, sha(contents[f.name]) if f.sha256 else None)
        for f in GOODBOOKS_FILES
    )
    monkeypatch.setattr(download, "GOODBOOKS_FILES", fake)
    server = serve(RangeHandler, contents)

    paths = download_goodbooks(tmp_path, base_url=server.base_url, progress=False)

    assert [p.name for p in paths] == [f.name for f in GOODBOOKS_FILES]
    assert all(p.read_bytes() == contents[p.name] for p in paths)
    assert sorted(r["path"] for r in server.requests) == sorted(contents)
