"""Fetch dataset files over HTTP(S): checksum-verified, written atomically, resumable."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
import urllib.parse
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path
from urllib.error import HTTPError, URLError
from urllib.request import Request, urlopen

from base.errors import ShelfwiseError

log = logging.getLogger(__name__)

USER_AGENT = "shelfwise-download/0.1 (+python-urllib)"
CHUNK_SIZE = 1 << 16
# Seconds before the first retry; doubled for each further one, capped at _BACKOFF_MAX.
_BACKOFF_SECONDS = 1.0
_BACKOFF_MAX = 30.0
# HTTP statuses worth retrying; every other 4xx/5xx fails at once.
_TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_CONTENT_RANGE_RE = re.compile(r"^\s*bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class RemoteFile:
    """One file to download.

    Parameters
    ----------
    name : str
        File name under the destination folder (a plain name, no directories).
    url : str
        Full ``http(s)`` address of the file.
    sha256 : str or None
        Lower-case hex sha256 of the bytes as downloaded. ``None`` where it is not
        known: the checksum of the first download is then logged and written to a
        ``<name>.sha256`` sidecar, which later runs verify against.
    """

    name: str
    url: str
    sha256: str | None

    def __post_init__(self) -> None:
        if not self.name or self.name in (".", "..") or "/" in self.name or "\\" in self.name:
            raise ValueError(f"RemoteFile name must be a plain file name, got {self.name!r}")
        if self.sha256 is not None and not _SHA256_RE.match(self.sha256):
            raise ValueError(
                f"RemoteFile {self.name}: sha256 must be 64 lower-case hex digits, "
                f"got {self.sha256!r}"
            )


# goodbooks-10k by Zygmunt Zając, https://github.com/zygmuntz/goodbooks-10k, CC BY-SA 4.0.
# The repository's tree holds the full, uncompressed CSVs, served as they are from the
# address below. Its v1.0 release
# (https://github.com/zygmuntz/goodbooks-10k/releases/tag/v1.0) has the same files as
# zip archives (books.zip, ratings.zip, ...; goodbooks-10k.zip holds all of them); the
# raw CSVs are used here so that the pinned checksums are of the files the loader reads.
GOODBOOKS_BASE_URL = "https://raw.githubusercontent.com/zygmuntz/goodbooks-10k/master"

GOODBOOKS_FILES: tuple[RemoteFile, ...] = (
    # ratings.csv, book_tags.csv and to_read.csv: no copy was at hand to take a checksum
    # from, so none is pinned. They are checked against the Content-Length/Content-Range
    # size while downloading, and the first download writes <name>.sha256 (and logs the
    # value, to pin here), which later runs and resumes are verified against.
    RemoteFile("ratings.csv", f"{GOODBOOKS_BASE_URL}/ratings.csv", None),
    # books.csv and tags.csv: byte-identical to zygmuntz/goodbooks-10k @ 6dd165b5 (git blobs
    # d694afdf and 65b5424e); see shared/data/goodbooks-10k/SOURCES.md.
    RemoteFile(
        "books.csv",
        f"{GOODBOOKS_BASE_URL}/books.csv",
        "4d21d0e0433128657c752e3a3d0405ac0ec11675d6c70c64cb0abf4ab1acb76a",
    ),
    RemoteFile(
        "tags.csv",
        f"{GOODBOOKS_BASE_URL}/tags.csv",
        "87f316957564fa21c316a4f50afc87f07906f478f990eec027aaca00c536c449",
    ),
    RemoteFile("book_tags.csv", f"{GOODBOOKS_BASE_URL}/book_tags.csv", None),
    RemoteFile("to_read.csv", f"{GOODBOOKS_BASE_URL}/to_read.csv", None),
)


class _TransientError(Exception):
    """A failure that another attempt (resuming the ``.part``) may get past."""


class _Restart(Exception):
    """The ``.part`` cannot be resumed: it was emptied, start again from byte zero."""


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file's bytes.

    Parameters
    ----------
    path : Path
        File to hash.

    Returns
    -------
    str
        Lower-case hex digest.
    """
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def download_files(
    files: Iterable[RemoteFile],
    dest: Path,
    *,
    base_url: str | None = None,
    progress: bool = True,
    timeout: float = 30,
    retries: int = 3,
) -> list[Path]:
    """Download files into ``dest``, verified and resumable.

    A file already in ``dest`` whose sha256 matches (the pinned one, else its
    ``.sha256`` sidecar) is not fetched again. Otherwise the bytes go to
    ``<name>.part``, resuming with an HTTP ``Range`` request when a ``.part`` is
    there (from byte zero when the server does not honour it), are checked, fsynced
    and renamed into place, so the final name never holds a partial file.

    Parameters
    ----------
    files : iterable of RemoteFile
        What to fetch.
    dest : Path
        Destination folder; created if missing.
    base_url : str, optional
        Replaces each URL's directory: file ``name`` is fetched from
        ``f"{base_url}/{name}"`` (mirrors, tests).
    progress : bool, default True
        Show a rich progress bar (bytes, speed) on stderr.
    timeout : float, default 30
        Seconds to wait to connect and for each read.
    retries : int, default 3
        Further attempts after a transient failure (connection error, timeout,
        short body, HTTP 408/429/5xx), with exponential backoff; each resumes the
        ``.part``. An attempt that grew the ``.part`` resets the count.

    Returns
    -------
    list of Path
        The final path of each file, in the order given.

    Raises
    ------
    ShelfwiseError
        One line: a checksum mismatch (the ``.part`` is deleted), or a network or
        HTTP failure once retries are used up (the ``.part`` is kept for a later
        resume).
    """
    files = tuple(files)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    with _progress_bar(progress) as bar:
        return [
            _download_one(f, _url_for(f, base_url), dest, bar=bar, timeout=timeout, retries=retries)
            for f in files
        ]


def download_goodbooks(
    dest: Path, *, base_url: str | None = None, progress: bool = True
) -> list[Path]:
    """Download the goodbooks-10k CSV files into ``dest``.

    Parameters
    ----------
    dest : Path
        Destination folder; created if missing.
    base_url : str, optional
        Mirror holding the files under their own names (see `download_files`).
    progress : bool, default True
        Show a progress bar.

    Returns
    -------
    list of Path
        Paths of the downloaded (or already present) files.
    """
    return download_files(GOODBOOKS_FILES, dest, base_url=base_url, progress=progress)


def _url_for(remote: RemoteFile, base_url: str | None) -> str:
    url = (
        remote.url
        if base_url is None
        else f"{base_url.rstrip('/')}/{urllib.parse.quote(remote.name)}"
    )
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in ("http", "https"):
        raise ShelfwiseError(
            f"cannot download {remote.name} from {url}: only http and https addresses are supported"
        )
    return url


@contextmanager
def _progress_bar(enabled: bool) -> Iterator[object | None]:
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    )
    with bar:
        yield bar


def _one_line(value: object) -> str:
    return " ".join(str(value).split()) or type(value).__name__


def _read_sidecar(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        log.warning("ignoring unreadable checksum file %s: %s", path, exc)
        return None
    token = text.split()[0].lower() if text.split() else ""
    if not _SHA256_RE.match(token):
        log.warning("ignoring checksum file %s: it does not start with a sha256", path)
        return None
    return token


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open a directory
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _download_one(
    remote: RemoteFile, url: str, dest: Path, *, bar, timeout: float, retries: int
) -> Path:
    final = dest / remote.name
    part = dest / f"{remote.name}.part"
    validator_file = dest / f"{remote.name}.part.etag"
    sidecar = dest / f"{remote.name}.sha256"
    expected = remote.sha256 or _read_sidecar(sidecar)
    expected_from = "pinned" if remote.sha256 else f"from {sidecar.name}"

    if final.is_file():
        if expected is not None:
            actual = sha256_of(final)
            if actual == expected:
                log.info("%s is already there with the expected sha256: not downloading it", final)
                return final
            log.warning(
                "%s is there but its sha256 is %s, expected %s (%s): downloading it again",
                final,
                actual,
                expected,
                expected_from,
            )
        else:
            log.warning(
                "%s is there but has no known checksum (no pinned value, no %s): "
                "downloading it again",
                final,
                sidecar.name,
            )

    task = bar.add_task(remote.name, total=None) if bar is not None else None
    failures = 0
    while True:
        before = _size(part)
        try:
            _attempt(url, part, validator_file, timeout=timeout, bar=bar, task=task)
            break
        except _Restart:
            continue
        except _TransientError as exc:
            if _size(part) > before:
                failures = 0
            failures += 1
            if failures > retries:
                notes = [f"after {failures} attempts"] if failures > 1 else []
                if part.exists():
                    notes.append(f"{part} kept to resume from")
                suffix = f" ({'; '.join(notes)})" if notes else ""
                raise ShelfwiseError(f"could not download {url}: {exc}{suffix}") from None
            delay = min(_BACKOFF_SECONDS * 2 ** (failures - 1), _BACKOFF_MAX)
            log.warning(
                "downloading %s failed (%s); retrying in %.1f s (%d/%d)",
                url,
                exc,
                delay,
                failures,
                retries,
            )
            time.sleep(delay)

    actual = sha256_of(part)
    if expected is not None and actual != expected:
        part.unlink(missing_ok=True)
        validator_file.unlink(missing_ok=True)
        raise ShelfwiseError(
            f"checksum mismatch for {remote.name} from {url}: "
            f"expected sha256 {expected} ({expected_from}), "
            f"got {actual}; the download was deleted"
        )
    os.replace(part, final)
    validator_file.unlink(missing_ok=True)
    _fsync_dir(dest)
    if remote.sha256 is None:
        if expected is None:
            _write_atomically(sidecar, f"{actual}  {remote.name}\n")
            _fsync_dir(dest)
        message = f"{remote.name}: sha256 {actual} (no pinned checksum; recorded in {sidecar})"
        log.info(message)
        if bar is not None:
            bar.console.print(message, markup=False, highlight=False, soft_wrap=True)
    else:
        log.info("downloaded %s (sha256 verified)", final)
    return final


def _attempt(url: str, part: Path, validator_file: Path, *, timeout: float, bar, task) -> None:
    """One HTTP request appending to (or restarting) ``part``; returns once it holds the whole
    file."""
    offset = _size(part)
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
        validator = (
            validator_file.read_text(encoding="utf-8").strip() if validator_file.exists() else ""
        )
        if validator:
            # The server sends the whole (new) file instead of the range if it changed since.
            headers["If-Range"] = validator
    try:
        response = urlopen(Request(url, headers=headers), timeout=timeout)
    except HTTPError as exc:
        exc.close()
        if exc.code == 416 and offset:
            total = _parse_content_range(exc.headers.get("Content-Range", ""))[2]
            if total == offset:
                log.info("%s already holds all %d bytes", part, offset)
                return
            log.warning("server refused to resume %s at byte %d: starting again", part, offset)
            _reset(part, validator_file)
            raise _Restart from None
        reason = f"HTTP {exc.code} {_one_line(exc.reason)}"
        if exc.code in _TRANSIENT_STATUS:
            raise _TransientError(reason) from None
        raise ShelfwiseError(f"could not download {url}: {reason}") from None
    except (URLError, HTTPException, OSError) as exc:
        raise _TransientError(_one_line(getattr(exc, "reason", exc))) from None

    with response:
        length_header = response.headers.get("Content-Length")
        length = int(length_header) if length_header and length_header.strip().isdigit() else None
        if response.status == 206 and offset:
            start, _end, total = _parse_content_range(response.headers.get("Content-Range", ""))
            if start != offset:
                log.warning(
                    "server answered the resume of %s at byte %d with byte %s: starting again",
                    part,
                    offset,
                    start,
                )
                _reset(part, validator_file)
                raise _Restart
            mode = "ab"
            expected_total = (
                total if total is not None else (offset + length if length is not None else None)
            )
        elif response.status == 200:
            if offset:
                log.info(
                    "server sent the whole of %s instead of resuming at byte %d: starting again",
                    url,
                    offset,
                )
            offset = 0
            mode = "wb"
            expected_total = length
            _save_validator(validator_file, response.headers)
        else:
            raise ShelfwiseError(
                f"could not download {url}: unexpected HTTP {response.status} {response.reason}"
            )

        if bar is not None:
            bar.update(task, total=expected_total, completed=offset)
        received = offset
        with part.open(mode) as fh:
            try:
                while True:
                    try:
                        chunk = response.read(CHUNK_SIZE)
                    except (HTTPException, OSError) as exc:
                        raise _TransientError(
                            f"connection lost after {received} bytes ({_one_line(exc)})"
                        ) from None
                    if not chunk:
                        break
                    fh.write(chunk)
                    received += len(chunk)
                    if bar is not None:
                        bar.update(task, completed=received)
            finally:
                fh.flush()
                os.fsync(fh.fileno())
    if expected_total is not None and received != expected_total:
        raise _TransientError(f"connection closed after {received} of {expected_total} bytes")


def _parse_content_range(value: str) -> tuple[int | None, int | None, int | None]:
    match = _CONTENT_RANGE_RE.match(value or "")
    if not match:
        return None, None, None
    start, end, total = match.groups()
    return (
        int(start) if start is not None else None,
        int(end) if end is not None else None,
        int(total) if total not in (None, "*") else None,
    )


def _save_validator(validator_file: Path, headers) -> None:
    etag = (headers.get("ETag") or "").strip()
    validator = (
        etag if etag and not etag.startswith("W/") else (headers.get("Last-Modified") or "").strip()
    )
    if validator:
        _write_atomically(validator_file, validator + "\n")
    else:
        validator_file.unlink(missing_ok=True)


def _reset(part: Path, validator_file: Path) -> None:
    part.unlink(missing_ok=True)
    validator_file.unlink(missing_ok=True)
