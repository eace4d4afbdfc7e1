"""Synthetic Goodreads rating dumps (goodbooks-10k and UCSD shapes) with planted, documented taste structure."""

from __future__ import annotations

import csv
import gzip
import io
import logging
import math
import re
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from queue import SimpleQueue
from typing import BinaryIO, TypeVar

import numpy as np
import polars as pl
import pyarrow as pa
from threadpoolctl import threadpool_limits

from shelfwise.errors import BadInputError, InvalidArgument

log = logging.getLogger(__name__)
T = TypeVar("T")

# --- goodbooks model constants (documented in generate_goodbooks) -----------------------------------
GB_DIM = 32  # length of the latent taste vectors
GB_POP_EXPONENT = 1.15  # a: selection weight ~ ratings_count ** a
GB_BETA = 12.0  # beta: selection weight ~ exp(beta * affinity)
GB_W_AUTHOR, GB_W_SERIES, GB_W_TAG, GB_W_NOISE = 1.0, 0.6, 1.0, 0.45
GB_TOP_TAGS = 10  # tags per book that enter its vector (by log(count) * idf)
GB_USER_NOISE = 0.35  # how far a user strays from their cluster mix
GB_W_FANDOM = 0.8  # weight of a user's favourite authors/series next to their cluster mix
GB_MIN_USER_SHARE = (
    0.17  # fewest ratings per user, as a share of the mean (19 of 112 in the real file)
)
GB_USER_SIGMA = 0.7  # log-normal spread of user activity above that floor
GB_TO_READ_SHARE = 912_705 / 5_976_479  # to_read rows per rating in the real dataset
GB_RATING_AFFINITY, GB_RATING_BIAS, GB_RATING_NOISE = 0.7, 0.45, 0.55
GB_BLOCK_USERS = 1024  # users per generation block, each with its own generator
GB_PILOT_USERS = 4096  # users that estimate each book's mean taste tilt
GB_WORKERS = 2  # threads; results do not depend on it

# --- UCSD model constants (documented in generate_ucsd) ---------------------------------------------
UCSD_FULL = (228_648_342, 876_145, 2_360_650)  # interactions, users, books of the real dump
UCSD_MAX_DENSITY = 0.02  # small samples get more users/books than proportional so this holds
UCSD_GENRES = (
    "fantasy",
    "romance",
    "mystery",
    "young-adult",
    "science-fiction",
    "historical-fiction",
    "non-fiction",
    "thriller",
    "classics",
    "horror",
    "biography",
    "poetry",
    "comics",
    "paranormal",
    "children",
    "contemporary",
)
UCSD_POP_ALPHA, UCSD_POP_X0 = 1.05, 3.0  # within-genre book popularity ~ (rank + x0) ** -alpha
UCSD_BLOCK_USERS = 1024
UCSD_BOOK_CHUNK = 131_072
UCSD_GZIP_LEVEL = (
    1  # the books file is ~1 GB of JSON at full size: speed over the last 20 % of size
)
# Normal quantiles at the cumulative shares of 1..4 stars (3 %, 11 %, 33 %, 68 %) of rated UCSD rows.
UCSD_STAR_CUTS = np.array([-1.8808, -1.2265, -0.4399, 0.4677])

_SERIES_RX = re.compile(r"\(([^()#]+?)[,\s]*#[^()]*\)\s*$")


# ==================================================================================================
# shared helpers
# ==================================================================================================


def _rng(seed: int, *stream: int) -> np.random.Generator:
    """An independent generator for one named stream of one seed (same inputs, same numbers)."""
    return np.random.default_rng([seed, *stream])


@contextmanager
def _progress(enabled: bool, description: str, total: int) -> Iterator[Callable[[int], None]]:
    """Yield an ``advance(n)`` callback that drives a rich progress bar (or does nothing)."""
    if not enabled:
        yield lambda n: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)


def _ordered_map(
    fn: Callable[..., T], jobs: Iterable[tuple], workers: int = 2, window: int = 4
) -> Iterator[T]:
    """``fn(*job)`` for each job on a small thread pool, yielded in job order, few jobs in flight.

    Each job draws from its own generator, so results do not depend on the scheduling; NumPy
    releases the GIL in the heavy calls, so two threads use both cores.
    """
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending: deque = deque()
        for job in jobs:
            pending.append(pool.submit(fn, *job))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _allocate(total: int, weights: np.ndarray, lo: int, cap: np.ndarray | int) -> np.ndarray:
    """Split ``total`` into integers in ``[lo, cap]`` roughly proportional to ``weights`` above ``lo``.

    Parameters
    ----------
    total : int
        The exact sum of the result.
    weights : numpy.ndarray
        Non-negative weights, one per slot.
    lo : int
        Every slot gets at least this much.
    cap : numpy.ndarray or int
        Every slot gets at most this much.

    Returns
    -------
    numpy.ndarray
        int64 counts summing to ``total``.
    """
    n = len(weights)
    cap_arr = np.broadcast_to(np.asarray(cap, dtype=np.int64), (n,)).copy()
    room = (cap_arr - lo).astype(np.float64)
    free = total - lo * n
    if free < 0 or room.min(initial=0) < 0 or room.sum() < free:
        raise ValueError(f"cannot split {total} into {n} parts between {lo} and the caps")
    w = np.asarray(weights, dtype=np.float64).copy()
    extra = np.zeros(n)
    active = room > 0
    remaining = float(free)
    while remaining > 1e-6 and active.any():  # water-filling: proportional, capped at room
        wa = np.where(active, w, 0.0)
        if wa.sum() <= 0:
            wa = active.astype(np.float64)
        share = remaining * wa / wa.sum()
        over = active & (extra + share >= room)
        if not over.any():
            extra += share
            break
        remaining -= float((room[over] - extra[over]).sum())
        extra[over] = room[over]
        active &= ~over
    base = np.minimum(np.floor(extra + 1e-9), room).astype(np.int64)
    short = int(free - base.sum())
    if short > 0:
        rem = np.where(base < room, extra - base, -np.inf)
        base[np.argsort(-rem, kind="stable")[:short]] += 1
    return base + lo


def _read_text(path: Path) -> str:
    """A plain or gzip-compressed text file's contents (a leading BOM dropped)."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    return raw.decode("utf-8-sig")


def _copy_rows(src: Path, dst: Path, column: str, keep: set[str] | None) -> int:
    """Copy a CSV (plain or gzip) to plain ``dst``, keeping the original bytes of each kept line.

    Parameters
    ----------
    src, dst : pathlib.Path
        Source (``.csv`` or ``.csv.gz``) and destination (plain CSV).
    column : str
        The column whose value decides which rows are kept.
    keep : set of str or None
        Values of ``column`` to keep; None keeps every row.

    Returns
    -------
    int
        Data rows written (header not counted).
    """
    lines = _read_text(src).split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise ValueError(f"{src}: empty file")
    reader = csv.reader(lines)
    header = next(reader)
    idx = header.index(column)
    out = [lines[0] + "\n"]
    if not any(
        '"' in line for line in lines
    ):  # no quoting at all (book_tags.csv): one record per line
        rows = (line for line in lines[1:] if line)
        out += [
            line + "\n"
            for line in rows
            if keep is None or line.rstrip("\r").split(",")[idx] in keep
        ]
        dst.write_text("".join(out), encoding="utf-8", newline="")
        return len(out) - 1
    done = reader.line_num
    for record in reader:  # a record may span lines (a quoted newline): keep all of its lines
        if record and (keep is None or record[idx] in keep):
            out.append("".join(line + "\n" for line in lines[done : reader.line_num]))
        done = reader.line_num
    dst.write_text("".join(out), encoding="utf-8", newline="")
    return len(out) - 1


def _unit_rows(x: np.ndarray) -> np.ndarray:
    """Each row scaled to length 1 (zero rows stay zero)."""
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norm > 0, norm, 1.0)


def _distinct_ints(rng: np.random.Generator, n: int, low: int, high: int) -> np.ndarray:
    """``n`` distinct integers from ``[low, high)`` in random order."""
    if high - low < n:
        raise ValueError("range too small")
    have = np.empty(0, dtype=np.int64)
    while len(have) < n:
        draw = np.sort(
            np.concatenate([have, rng.integers(low, high, int((n - len(have)) * 1.1) + 16)])
        )
        have = draw[
            np.concatenate([[True], draw[1:] != draw[:-1]])
        ]  # (np.unique hashes: slow here)
    return rng.permutation(have)[:n]


# ==================================================================================================
# goodbooks
# ==================================================================================================


def _series_of(title: str) -> str | None:
    """The series named at the end of a goodbooks title ("Inferno (Robert Langdon, #4)"), if any."""
    m = _SERIES_RX.search(title or "")
    return m.group(1).strip() if m else None


def _read_goodbooks_books(books_csv: Path) -> pl.DataFrame:
    """The books.csv columns the model uses, ids and counts as integers."""
    try:
        books = pl.read_csv(io.BytesIO(_read_text(books_csv).encode()), infer_schema=False)
    except UnicodeDecodeError as exc:
        raise BadInputError(
            f"{books_csv}: not UTF-8 text (bad byte at offset {exc.start:,})"
        ) from exc
    except (OSError, EOFError, zlib.error, pl.exceptions.PolarsError) as exc:
        raise BadInputError(
            f"{books_csv}: cannot read it as CSV: {str(exc).strip().splitlines()[0]}"
        ) from exc
    need = [
        "book_id",
        "goodreads_book_id",
        "authors",
        "title",
        "ratings_count",
        *[f"ratings_{s}" for s in range(1, 6)],
    ]
    missing = [c for c in need if c not in books.columns]
    if missing:
        raise BadInputError(f"{books_csv}: line 1: missing column(s) {', '.join(missing)}")
    ints = ["book_id", "goodreads_book_id", "ratings_count", *[f"ratings_{s}" for s in range(1, 6)]]
    for c in ints:
        bad = books[c].is_not_null() & books[c].cast(pl.Float64, strict=False).is_null()
        if bad.any():
            row = int(bad.arg_true()[0])
            raise BadInputError(
                f"{books_csv}: line {row + 2}: column {c}: {books[c][row]!r} is not a number"
            )
    return books.select(need).with_columns(
        [pl.col(c).cast(pl.Float64).cast(pl.Int64) for c in ints]
        + [pl.col("authors").fill_null(""), pl.col("title").fill_null("")]
    )


def _tag_rows(book_tags_csv: Path, goodreads_ids: np.ndarray) -> pl.DataFrame:
    """(book position, tag_id, weight) rows: each book's top tags by log(count) * idf."""
    tags = pl.read_csv(
        io.BytesIO(_read_text(book_tags_csv).encode()),
        schema_overrides={"goodreads_book_id": pl.Int64, "tag_id": pl.Int64, "count": pl.Int64},
    )
    pos = pl.DataFrame({"goodreads_book_id": goodreads_ids, "pos": np.arange(len(goodreads_ids))})
    tags = tags.filter(pl.col("count") > 0).join(pos, on="goodreads_book_id", how="inner")
    tags = tags.group_by("pos", "tag_id").agg(pl.col("count").sum())
    n_tagged = tags["pos"].n_unique()
    if n_tagged == 0:
        return pl.DataFrame(schema={"pos": pl.Int64, "tag_id": pl.Int64, "weight": pl.Float64})
    tags = tags.with_columns(
        (
            pl.col("count").cast(pl.Float64).log1p() * (n_tagged / pl.len().over("tag_id")).log()
        ).alias("weight")
    ).filter(pl.col("weight") > 0)
    return (
        tags.sort(["pos", "weight", "tag_id"], descending=[False, True, False])
        .group_by("pos", maintain_order=True)
        .head(GB_TOP_TAGS)
        .select("pos", "tag_id", "weight")
    )


def _book_vectors(
    books: pl.DataFrame, tag_rows: pl.DataFrame | None, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Unit taste vectors per book (author + series + top tags + noise) and their author+series part."""
    n = books.height
    d = GB_DIM
    # Authors: the first named author counts fully, co-authors a third.
    author_lists = [
        [a.strip() for a in s.split(",") if a.strip()] or ["?"] for s in books["authors"].to_list()
    ]
    names = sorted({a for lst in author_lists for a in lst})
    name_idx = {a: i for i, a in enumerate(names)}
    author_vec = _unit_rows(rng.standard_normal((len(names), d)))
    a_part = np.zeros((n, d))
    primary = np.empty(n, dtype=np.int64)
    for i, lst in enumerate(author_lists):
        primary[i] = name_idx[lst[0]]
        a_part[i] = author_vec[primary[i]]
        for other in lst[1:4]:
            a_part[i] += author_vec[name_idx[other]] / 3
    a_part = _unit_rows(a_part)
    # Series, parsed from the title: "Angels & Demons  (Robert Langdon, #1)" -> "Robert Langdon".
    series = [_series_of(t) for t in books["title"].to_list()]
    series_names = sorted({s for s in series if s})
    series_vec = _unit_rows(rng.standard_normal((max(len(series_names), 1), d)))
    s_idx = {s: i for i, s in enumerate(series_names)}
    s_part = np.zeros((n, d))
    has_series = np.array([s is not None for s in series])
    if has_series.any():
        s_part[has_series] = series_vec[[s_idx[s] for s in series if s]]
    # Tags: weighted sum of random tag vectors, so books sharing genre shelves point the same way.
    t_part = np.zeros((n, d))
    if tag_rows is not None and tag_rows.height:
        tag_ids, tag_inv = np.unique(tag_rows["tag_id"].to_numpy(), return_inverse=True)
        tag_vec = _unit_rows(rng.standard_normal((len(tag_ids), d)))
        np.add.at(
            t_part,
            tag_rows["pos"].to_numpy(),
            tag_rows["weight"].to_numpy()[:, None] * tag_vec[tag_inv],
        )
        t_part = _unit_rows(t_part)
        # Untagged books borrow the mean tag direction of the same author's tagged books.
        tagged = np.linalg.norm(t_part, axis=1) > 0
        sums = np.zeros((len(names), d))
        np.add.at(sums, primary[tagged], t_part[tagged])
        borrowed = _unit_rows(sums[primary])
        t_part[~tagged] = borrowed[~tagged]
    noise = _unit_rows(rng.standard_normal((n, d)))
    fandom = GB_W_AUTHOR * a_part + GB_W_SERIES * s_part
    v = fandom + GB_W_TAG * t_part + GB_W_NOISE * noise
    return _unit_rows(v).astype(np.float32), _unit_rows(fandom)


@dataclass(frozen=True)
class _GbTaste:
    """What users are made of: cluster centres and shares, and the author/series part of each book."""

    centres: np.ndarray  # (k, dim) unit
    share: np.ndarray  # (k,) cluster shares
    fandom: np.ndarray  # (books, dim) unit author+series direction of each book
    fav_p: np.ndarray  # (books,) probability that a book is the seed of a favourite author/series


def _gb_taste(
    v: np.ndarray, fandom: np.ndarray, popularity: np.ndarray, rng: np.random.Generator
) -> _GbTaste:
    """Taste-cluster centres anchored on popular books, cluster shares, favourite-seed probabilities."""
    n = len(v)
    k = int(np.clip(round(math.sqrt(n) / 4), 2, 32))
    p = np.sqrt(popularity.astype(np.float64))
    anchors = rng.choice(n, size=min(k, n), replace=False, p=p / p.sum())
    direction = _unit_rows(rng.standard_normal((len(anchors), v.shape[1])))
    centres = _unit_rows(v[anchors].astype(np.float64) + 0.6 * direction)
    share = rng.dirichlet(np.full(len(anchors), 2.0))
    fav = popularity.astype(np.float64) ** GB_POP_EXPONENT
    return _GbTaste(centres, share, fandom, fav / fav.sum())


def _gb_users(rng: np.random.Generator, b: int, taste: _GbTaste) -> np.ndarray:
    """``b`` unit user vectors: 1-3 taste clusters, 1-4 favourite authors/series, a personal deviation."""
    k = len(taste.centres)
    n_clusters = rng.choice(3, size=b, p=[0.5, 0.35, 0.15]) + 1
    picks = rng.choice(k, size=(b, 3), p=taste.share)
    mix = rng.dirichlet(np.ones(3), size=b) * (np.arange(3)[None, :] < n_clusters[:, None])
    u = _unit_rows(np.einsum("bj,bjd->bd", mix, taste.centres[picks]))
    n_fav = 1 + rng.binomial(3, 0.4, size=b)
    fav_books = rng.choice(len(taste.fav_p), size=(b, 4), p=taste.fav_p)
    fav = np.einsum(
        "bj,bjd->bd",
        (np.arange(4)[None, :] < n_fav[:, None]).astype(np.float64),
        taste.fandom[fav_books],
    )
    noise = _unit_rows(rng.standard_normal((b, u.shape[1])))
    return _unit_rows(u + GB_W_FANDOM * _unit_rows(fav) + GB_USER_NOISE * noise).astype(np.float32)


def _gb_block(
    seed: int,
    block: int,
    first_user: int,
    n_rate: np.ndarray,
    n_read: np.ndarray,
    vt: np.ndarray,
    logpop: np.ndarray,
    taste: _GbTaste,
    workspaces: SimpleQueue,
) -> tuple[np.ndarray, ...]:
    """Pick the rated and to-read books of one block of users (Gumbel top-k sampling).

    ``vt`` is the (dim, books) transposed book matrix; ``workspaces`` holds reusable (users, books)
    float32 buffers, one pair per worker thread, so blocks do not page-fault fresh memory.
    """
    rng = _rng(seed, 3, block)
    b = len(n_rate)
    n_books = vt.shape[1]
    total = n_rate + n_read
    # Row r of this block is local user by_total[r]: users that take few books come first, so small
    # groups of rows can be sorted to their own largest count, not the block's heaviest user's.
    by_total = np.argsort(total, kind="stable")
    u = _gb_users(rng, b, taste)
    bias = np.empty(b, dtype=np.float32)
    bias[by_total] = rng.standard_normal(b)
    work = workspaces.get()
    try:
        if work.get("books") != n_books or len(work["tilt"]) < b:
            rows = max(b, GB_BLOCK_USERS)
            work.update(
                books=n_books,
                tilt=np.empty((rows, n_books), np.float32),
                keys=np.empty((rows, n_books), np.float32),
            )
        tilt, keys = work["tilt"][:b], work["keys"][:b]
        np.matmul(u * np.float32(GB_BETA), vt, out=tilt)  # beta * affinity
        # Uniforms in (0, 1) from 23 random bits each, then keys = logits + Gumbel noise; the top k
        # keys of a row are a weighted sample of k books without replacement.
        bits = rng.bit_generator.random_raw((b * n_books + 1) // 2).view(np.uint32)[: b * n_books]
        np.right_shift(bits, 9, out=bits)
        np.multiply(bits.reshape(b, n_books), np.float32(2.0**-23), out=keys, casting="unsafe")
        keys += np.float32(2.0**-24)
        np.log(keys, out=keys)
        np.negative(keys, out=keys)
        np.log(keys, out=keys)  # = -Gumbel
        np.subtract(logpop[None, :], keys, out=keys)
        keys += tilt
        picked: list[tuple[np.ndarray, ...]] = []
        for lo in range(0, b, 64):
            idx = by_total[lo : lo + 64]
            kmax = int(total[idx].max())
            if kmax == 0:
                continue
            sub = keys[lo : lo + 64]
            if kmax < n_books:
                top = np.argpartition(sub, n_books - kmax, axis=1)[:, n_books - kmax :]
            else:
                top = np.broadcast_to(np.arange(n_books), sub.shape).copy()
            order = np.argsort(-np.take_along_axis(sub, top, axis=1), axis=1, kind="stable")
            top = np.take_along_axis(top, order, axis=1)  # best key first
            top_tilt = np.take_along_axis(tilt[lo : lo + 64], top, axis=1)
            j = np.arange(kmax)[None, :]
            rated = j < n_rate[idx][:, None]
            reads = (j >= n_rate[idx][:, None]) & (j < total[idx][:, None])
            users = np.broadcast_to(idx[:, None], top.shape)
            picked.append((users[rated], top[rated], top_tilt[rated], users[reads], top[reads]))
    finally:
        workspaces.put(work)
    r_user, r_book, r_tilt, t_user, t_book = (np.concatenate(c) for c in zip(*picked))
    # By user; each user's rows in random order (the real file is in time order, not sampling order).
    r_order = np.lexsort((rng.random(len(r_user)), r_user))
    t_order = np.lexsort((rng.random(len(t_user)), t_user))
    r_user = r_user[r_order]
    return (
        (r_user + first_user).astype(np.int32),
        r_book[r_order].astype(np.int32),
        (r_tilt[r_order] / np.float32(GB_BETA)).astype(np.float32),
        bias[r_user],
        rng.standard_normal(len(r_user)).astype(np.float32),
        (t_user[t_order] + first_user).astype(np.int32),
        t_book[t_order].astype(np.int32),
    )


def _stars(book: np.ndarray, score: np.ndarray, hist: np.ndarray) -> np.ndarray:
    """Stars from each book's histogram: the book's raters ranked by score fill 1..5 in its proportions."""
    n_books = hist.shape[0]
    by_score = np.argsort(score, kind="stable")
    order = by_score[np.argsort(book[by_score], kind="stable")]  # by book, then score
    sorted_book = book[order]
    counts = np.bincount(book, minlength=n_books)
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.arange(len(book)) - start[sorted_book]
    q = (rank + 0.5) / counts[sorted_book]
    p = hist / np.maximum(hist.sum(axis=1, keepdims=True), 1)
    cuts = np.cumsum(p, axis=1)[:, :4]
    stars_sorted = 1 + (q[:, None] > cuts[sorted_book]).sum(axis=1)
    stars = np.empty(len(book), dtype=np.int8)
    stars[order] = stars_sorted
    return stars


def generate_goodbooks(
    dest: Path,
    *,
    books_csv: Path,
    tags_csv: Path | None = None,
    book_tags_csv: Path | None = None,
    n_ratings: int = 5_976_479,
    n_users: int = 53_424,
    n_books: int | None = None,
    seed: int = 42,
    progress: bool = True,
) -> dict[str, int]:
    """Write a synthetic goodbooks-10k dump over the real books, with planted taste structure.

    Ratings and to-read pairs are generated; book metadata is copied from the real files (byte for
    byte, restricted to the books used). The model, with its constants (``GB_*`` in this module):

    1. **Books.** Every book in ``books_csv`` (or, with ``n_books``, that many books with the highest
       ``ratings_count``, ties to the lower ``book_id``) gets a unit latent vector in 32 dimensions,
       ``normalise(1.0 * author + 0.6 * series + 1.0 * tags + 0.45 * noise)``. ``author`` is a random
       unit vector per author name (first author fully, co-authors a third); ``series`` is a random
       unit vector per series name parsed from the title ("Angels & Demons  (Robert Langdon, #1)" ->
       "Robert Langdon"); ``tags`` sums random unit vectors of the book's 10 top tags in
       ``book_tags_csv``, weighted by ``log(1 + count) * idf`` (so "to-read" counts for nothing;
       books without tags borrow their author's mean tag direction). Books by one author, in one
       series or on the same genre shelves point the same way. **The Dan Brown novels form a planted
       cluster** this way: they share the author vector, four share the "Robert Langdon" series
       vector, and their top tags overlap ("dan-brown", "brown-dan", "conspiracy",
       "robert-langdon"). Nothing in the code names them.
    2. **Users.** ``clip(round(sqrt(books) / 4), 2, 32)`` taste clusters (25 for 10,000 books) are
       centred on anchor books drawn with probability ~ ``sqrt(ratings_count)``, plus a random
       direction; cluster sizes are Dirichlet(2). A user's vector is
       ``normalise(cluster mix + 0.8 * fandom + 0.35 * noise)``: the cluster mix combines 1 (50 %),
       2 (35 %) or 3 (15 %) clusters with Dirichlet(1) weights; ``fandom`` is the author+series
       direction of 1-4 favourite books drawn with probability ~ ``ratings_count ** 1.15``, so a user
       who is a fan of one Robert Langdon novel is a fan of the author and the series. Affinity is the
       cosine ``<user, book>``.
    3. **Activity.** Ratings per user are long-tailed: a floor of 17 % of the mean (19 at full size,
       the real minimum) plus a log-normal (sigma 0.7) share of the rest, capped at the number of
       books and summing exactly to ``n_ratings``. To-read counts are log-normal (sigma 1.3; 10 % of
       users have none) and total ``round(0.1527 * n_ratings)`` (912,705 at full size, as in the
       real dataset).
    4. **Which books.** Each user rates a weighted sample without replacement (Gumbel top-k) with
       weight ``ratings_count ** 1.15 * exp(12 * affinity) / m_b``, where ``m_b`` is the mean of
       ``exp(12 * affinity)`` over a pilot panel of 4,096 users: taste decides *who* rates a book,
       while each book's expected share still follows ``ratings_count`` (at full size the most rated
       book gets about 21,600 ratings, as The Hunger Games has 22,806 in the real file). To-read pairs
       continue the same sample after the rated books, so they are never rated pairs.
    5. **Stars.** Each rating gets a score ``0.7 * z + 0.45 * user_bias + 0.55 * noise``, where ``z``
       is the user's affinity to the book standardised among that book's raters. Within each book,
       raters ranked by score fill 1..5 stars in the proportions of the book's real
       ``ratings_1..ratings_5``: per-book star distributions match the real histograms, and users
       who like a book's author, series or genre rate it higher.

    What this gives at full size (seed 42): Spearman 0.99 between ``ratings_count`` and ratings per
    book; 73 % of The Da Vinci Code's 9,806 raters also rate another Dan Brown novel, against 31 % of
    all users; those who gave it 4-5 stars rate the other Dan Brown novels 4.20 on average, those who
    gave it 1-3 stars 3.38.

    Rows are ordered by user; each user's rows are in random order. Blocks of 1,024 users each draw
    from their own generator derived from ``seed`` (on two threads), so the bytes depend only on the
    arguments (and on the platform's floating-point kernels).

    Parameters
    ----------
    dest : pathlib.Path
        Output folder (created if missing).
    books_csv : pathlib.Path
        The real books.csv (plain or gzip).
    tags_csv : pathlib.Path, optional
        The real tags.csv; copied (restricted to tags used by the written book_tags.csv when
        ``n_books`` restricts the books).
    book_tags_csv : pathlib.Path, optional
        The real book_tags.csv or a book subset of it; shapes the book vectors and is copied for
        the books used.
    n_ratings : int
        Ratings to write (exact).
    n_users : int
        Users; ids are 1..n_users, each with at least one rating.
    n_books : int, optional
        Use only this many of the most-rated books (all books when None).
    seed : int
        Non-negative seed; same arguments give byte-identical files.
    progress : bool
        Show a progress bar.

    Returns
    -------
    dict of str to int
        Data rows written per file name (``ratings.csv``, ``to_read.csv``, ``books.csv`` and, when
        given, ``tags.csv`` and ``book_tags.csv``).
    """
    if seed < 0:
        raise InvalidArgument("seed must be >= 0")
    if n_ratings < 1 or n_users < 1:
        raise InvalidArgument("n_ratings and n_users must be >= 1")
    if n_ratings < n_users:
        raise InvalidArgument(
            f"{n_ratings:,} ratings cannot give each of {n_users:,} users one: ask for at least as many ratings as users"
        )
    dest = Path(dest)
    books = _read_goodbooks_books(Path(books_csv))
    n_all = books.height
    if n_books is not None:
        if not 1 <= n_books <= n_all:
            raise InvalidArgument(f"n_books must be in 1..{n_all}")
        books = books.sort(["ratings_count", "book_id"], descending=[True, False]).head(n_books)
    books = books.sort("book_id")
    nb = books.height
    restricted = nb < n_all
    if n_ratings > n_users * nb:
        raise InvalidArgument(f"{n_ratings} ratings do not fit {n_users} users x {nb} books")
    log.info("goodbooks: %d ratings, %d users, %d books, seed %d", n_ratings, n_users, nb, seed)

    tag_rows = (
        _tag_rows(Path(book_tags_csv), books["goodreads_book_id"].to_numpy())
        if book_tags_csv
        else None
    )
    v, fandom = _book_vectors(books, tag_rows, _rng(seed, 0))
    popularity = np.maximum(books["ratings_count"].to_numpy(), 1)
    taste = _gb_taste(v, fandom, popularity, _rng(seed, 1))
    # Normalise the taste tilt per book over a pilot panel of users, so that a book's expected
    # selection weight stays ratings_count ** a: structure reorders users, not the popularity tail.
    pilot = _gb_users(_rng(seed, 4), GB_PILOT_USERS, taste)
    mean_tilt = np.zeros(nb)
    for lo_user in range(0, GB_PILOT_USERS, 512):  # |beta * affinity| <= beta: exp cannot overflow
        mean_tilt += np.exp(np.float32(GB_BETA) * (pilot[lo_user : lo_user + 512] @ v.T)).sum(
            axis=0, dtype=np.float64
        )
    logpop = (GB_POP_EXPONENT * np.log(popularity) - np.log(mean_tilt / GB_PILOT_USERS)).astype(
        np.float32
    )
    hist = books.select([f"ratings_{s}" for s in range(1, 6)]).to_numpy().astype(np.float64)

    # Activity: exact totals, long-tailed, capped by the number of books.
    arng = _rng(seed, 2)
    mean = n_ratings / n_users
    lo = int(min(19, max(1, math.floor(GB_MIN_USER_SHARE * mean))))
    n_rate = _allocate(n_ratings, arng.lognormal(0.0, GB_USER_SIGMA, n_users), lo, nb)
    read_w = arng.lognormal(0.0, 1.3, n_users) * (arng.random(n_users) < 0.9)
    n_read_total = min(round(GB_TO_READ_SHARE * n_ratings), int((nb - n_rate).sum()))
    n_read = _allocate(n_read_total, read_w, 0, nb - n_rate)

    parts: list[tuple[np.ndarray, ...]] = []
    step = GB_BLOCK_USERS
    vt = np.ascontiguousarray(v.T)
    workspaces: SimpleQueue = SimpleQueue()
    for _ in range(GB_WORKERS):
        workspaces.put({})
    jobs = (
        (
            seed,
            block,
            first,
            n_rate[first : first + step],
            n_read[first : first + step],
            vt,
            logpop,
            taste,
            workspaces,
        )
        for block, first in enumerate(range(0, n_users, step))
    )
    # One BLAS thread per worker: the workers already use the cores.
    with (
        _progress(progress, "goodbooks ratings", n_ratings) as advance,
        threadpool_limits(1, user_api="blas"),
    ):
        for part in _ordered_map(_gb_block, jobs, workers=GB_WORKERS):
            parts.append(part)
            advance(len(part[0]))
    r_user, r_book, r_aff, r_bias, r_noise, t_user, t_book = (
        np.concatenate(c) for c in zip(*parts)
    )
    del parts

    # Stars: affinity standardised within each book, then the book's own histogram.
    cnt = np.bincount(r_book, minlength=nb).astype(np.float64)
    mu = np.bincount(r_book, weights=r_aff, minlength=nb) / np.maximum(cnt, 1)
    var = (
        np.bincount(r_book, weights=r_aff.astype(np.float64) ** 2, minlength=nb)
        / np.maximum(cnt, 1)
        - mu**2
    )
    z = (r_aff - mu[r_book]) / np.sqrt(np.maximum(var, 1e-6))[r_book]
    score = GB_RATING_AFFINITY * z + GB_RATING_BIAS * r_bias + GB_RATING_NOISE * r_noise
    stars = _stars(r_book, score, hist)

    dest.mkdir(parents=True, exist_ok=True)
    book_ids = books["book_id"].to_numpy()
    counts: dict[str, int] = {}
    pl.DataFrame({"user_id": r_user + 1, "book_id": book_ids[r_book], "rating": stars}).write_csv(
        dest / "ratings.csv"
    )
    counts["ratings.csv"] = len(r_user)
    pl.DataFrame({"user_id": t_user + 1, "book_id": book_ids[t_book]}).write_csv(
        dest / "to_read.csv"
    )
    counts["to_read.csv"] = len(t_user)
    keep_books = {str(b) for b in book_ids} if restricted else None
    counts["books.csv"] = _copy_rows(Path(books_csv), dest / "books.csv", "book_id", keep_books)
    used_tags: set[str] | None = None
    if book_tags_csv:
        keep_gr = {str(g) for g in books["goodreads_book_id"].to_list()} if restricted else None
        counts["book_tags.csv"] = _copy_rows(
            Path(book_tags_csv), dest / "book_tags.csv", "goodreads_book_id", keep_gr
        )
        if restricted:
            written = pl.read_csv(dest / "book_tags.csv", infer_schema=False)
            used_tags = set(written["tag_id"].to_list())
    if tags_csv:
        counts["tags.csv"] = _copy_rows(Path(tags_csv), dest / "tags.csv", "tag_id", used_tags)
    log.info("goodbooks written to %s: %s", dest, counts)
    return counts


# ==================================================================================================
# UCSD
# ==================================================================================================


def _powerlaw_index(u: np.ndarray, size: np.ndarray) -> np.ndarray:
    """Inverse CDF of a density ~ (x + x0) ** -alpha on [0, size): an index in 0..size-1."""
    e = 1.0 - UCSD_POP_ALPHA
    lo = UCSD_POP_X0**e
    hi = (size + UCSD_POP_X0) ** e
    x = (lo + u * (hi - lo)) ** (1.0 / e) - UCSD_POP_X0
    return np.minimum(x.astype(np.int64), size - 1)


def _ucsd_sizes(n_interactions: int, n_users: int | None, n_books: int | None) -> tuple[int, int]:
    """(users, books): as given, else scaled from the real dump (see generate_ucsd)."""
    full_n, full_u, full_b = UCSD_FULL
    users = n_users if n_users is not None else max(1, round(full_u * n_interactions / full_n))
    books = n_books if n_books is not None else max(2, round(full_b * n_interactions / full_n))
    if n_users is None and n_books is None:
        density = n_interactions / (users * books)
        if density > UCSD_MAX_DENSITY:
            f = math.sqrt(density / UCSD_MAX_DENSITY)
            users, books = math.ceil(users * f), math.ceil(books * f)
    elif n_users is None:
        users = max(users, math.ceil(2 * n_interactions / books))
    elif n_books is None:
        books = max(books, math.ceil(2 * n_interactions / users))
    if n_users is None:
        users = min(users, n_interactions)  # every user has at least one interaction
    return users, books


class _UcsdBooks:
    """Book-side structure of the UCSD model, indexed by popularity rank within the whole catalogue."""

    def __init__(self, n_books: int, seed: int) -> None:
        rng = _rng(seed, 10)
        g = len(UCSD_GENRES)
        self.n = n_books
        self.n_genres = g
        rank = np.arange(n_books)
        self.genre = (rank % g).astype(np.int16)
        self.genre_size = np.array([(n_books - k + g - 1) // g for k in range(g)], dtype=np.int64)
        self.genre_share = rng.dirichlet(np.full(g, 3.0)) * (self.genre_size > 0)
        self.genre_share /= self.genre_share.sum()
        self.csv_of_rank = rng.permutation(n_books).astype(np.int64)
        self.rank_of_csv = np.empty(n_books, dtype=np.int64)
        self.rank_of_csv[self.csv_of_rank] = rank
        # Popular books are a little better on average.
        self.quality = (rng.standard_normal(n_books) + 0.3 * (1 - rank / n_books)).astype(
            np.float32
        )
        # Authors: runs of consecutive books within a genre (so an author's books share genre and
        # similar popularity); some runs are series.
        order = np.lexsort((rank // g, self.genre))  # by genre, then within-genre popularity
        starts = rng.random(n_books) < 1 / 2.8
        genre_sorted = self.genre[order]
        starts[0] = True
        starts[1:] |= genre_sorted[1:] != genre_sorted[:-1]
        author_sorted = np.cumsum(starts) - 1
        self.n_authors = int(author_sorted[-1]) + 1 if n_books else 0
        self.author = np.empty(n_books, dtype=np.int64)
        self.author[order] = author_sorted
        run_start = np.maximum.accumulate(np.where(starts, np.arange(n_books), 0))
        pos_sorted = np.arange(n_books) - run_start
        run_len = np.bincount(author_sorted, minlength=self.n_authors)
        is_series_author = rng.random(self.n_authors) < 0.55
        self.series_pos = np.zeros(n_books, dtype=np.int64)  # 0 = not in a series, else #k
        in_series = is_series_author[author_sorted] & (run_len[author_sorted] >= 2)
        self.series_pos[order] = np.where(in_series, pos_sorted + 1, 0)
        # Counters filled while interactions are written.
        self.shelved = np.zeros(n_books, dtype=np.int64)
        self.rated = np.zeros(n_books, dtype=np.int64)
        self.star_sum = np.zeros(n_books, dtype=np.int64)
        self.reviewed = np.zeros(n_books, dtype=np.int64)

    def sample(self, rng: np.random.Generator, fav: np.ndarray, loyalty: np.ndarray) -> np.ndarray:
        """One popularity rank per draw; ``fav``/``loyalty`` are per draw."""
        own = rng.random(len(fav)) < loyalty
        other = rng.choice(self.n_genres, size=len(fav), p=self.genre_share)
        genre = np.where(own, fav, other)
        j = _powerlaw_index(rng.random(len(fav)), self.genre_size[genre])
        return j * self.n_genres + genre


def _ucsd_group(
    books: _UcsdBooks, seed: int, group: int, first_user: int, n_per_user: np.ndarray
) -> dict[str, np.ndarray]:
    """Interactions of one group of users, sorted by (user, book csv id), without duplicate pairs."""
    rng = _rng(seed, 11, group)
    b = len(n_per_user)
    m = books.n
    share = books.genre_share
    fav = rng.choice(books.n_genres, size=b, p=share)
    loyalty = rng.beta(2.0, 3.0, b)
    p_read = rng.beta(2.5, 2.6, b)
    p_rate = rng.beta(20.0, 1.5, b)
    p_review = rng.beta(0.35, 2.2, b)
    bias = rng.standard_normal(b)

    target = n_per_user.astype(np.int64)
    keys = np.empty(0, dtype=np.int64)
    need = target.copy()
    for attempt in range(64):
        users = np.repeat(np.arange(b), need)
        if attempt < 16:
            csv_ids = books.csv_of_rank[books.sample(rng, fav[users], loyalty[users])]
        else:  # a few very heavy users exhausted the popular books: fill uniformly
            csv_ids = rng.integers(0, m, len(users))
        new = np.sort(users.astype(np.int64) * m + csv_ids)
        new = new[np.concatenate([[True], new[1:] != new[:-1]])] if len(new) else new
        if len(keys):
            at = np.minimum(np.searchsorted(keys, new), len(keys) - 1)
            new = new[keys[at] != new]
            keys = np.sort(np.concatenate([keys, new]), kind="stable")
        else:
            keys = new
        have = np.bincount(keys // m, minlength=b)
        need = target - have
        if need.max(initial=0) <= 0:
            break
    else:  # cannot happen while users take at most half of the books
        raise RuntimeError("could not draw enough distinct books")

    users = (keys // m).astype(np.int64)
    csv_ids = keys - users * m
    rank = books.rank_of_csv[csv_ids]
    n = len(keys)
    is_read = rng.random(n) < p_read[users]
    rated = is_read & (rng.random(n) < p_rate[users])
    reviewed = is_read & (rng.random(n) < p_review[users])
    match = books.genre[rank] == fav[users]
    score = (
        0.55 * books.quality[rank] + 0.5 * bias[users] + 0.45 * match + 0.7 * rng.standard_normal(n)
    )
    centre = 0.45 * 0.45
    spread = math.sqrt(0.55**2 + 0.5**2 + 0.45**2 * 0.25 + 0.7**2)
    stars = (1 + np.searchsorted(UCSD_STAR_CUTS, (score - centre) / spread)).astype(np.int8)
    stars[~rated] = 0
    return {
        "rank": rank,
        "user_id": (users + first_user).astype(np.int32),
        "book_id": csv_ids.astype(np.int32),
        "is_read": is_read.astype(np.int8),
        "rating": stars,
        "is_reviewed": reviewed.astype(np.int8),
    }


_ADJ = ["Silent", "Hidden", "Broken", "Last", "Golden", "Lost", "Secret", "Dark", "Bright", "Wild", "Burning", "Frozen", "Crimson", "Silver", "Quiet", "Forgotten", "Endless", "Hollow", "Scarlet", "Distant", "Little", "Iron", "Glass", "Winter", "Summer", "Midnight", "Savage", "Gentle", "Stolen", "Shattered", "Wicked", "Sacred", "Hungry", "Restless", "Painted", "Velvet", "Falling", "Rising", "Drowned", "Empty"]
_NOUN = ["River", "Garden", "House", "Kingdom", "Shadow", "Crown", "Road", "Sea", "Storm", "Heart", "Empire", "Witness", "Orchard", "Library", "Mountain", "Harbor", "Promise", "Letter", "Island", "Fire", "City", "Forest", "Queen", "Thief", "Daughter", "Wolf", "Tower", "Mirror", "Bridge", "Song", "Map", "Clock", "Station", "Archive", "Star", "Lantern", "Bone", "Feather", "Hunter", "Ghost", "Winter", "Game"]
_FIRST = ["Anna", "James", "Maria", "John", "Emma", "Robert", "Sarah", "David", "Laura", "Michael", "Clara", "Daniel", "Nora", "Thomas", "Iris", "Peter", "Julia", "Samuel", "Lena", "Henry", "Alice", "Oliver", "Rosa", "Victor", "Helen", "Arthur", "Mira", "Felix", "Ruth", "Oscar", "Elena", "Hugo"]
_LAST = ["Smith", "Carter", "Nguyen", "Walsh", "Moreno", "Fischer", "Okafor", "Lindqvist", "Brennan", "Haddad", "Kowalski", "Reyes", "Tanaka", "Dubois", "Novak", "Hughes", "Sato", "Romano", "Becker", "Silva", "Murphy", "Petrov", "Larsen", "Cohen", "Abbott", "Quinn", "Mercer", "Vance"]
_SHELF_EXTRA = {
    "fantasy": ("magic", "epic-fantasy", "dragons"),
    "romance": ("contemporary-romance", "love", "chick-lit"),
    "mystery": ("crime", "detective", "suspense"),
    "young-adult": ("ya", "teen", "coming-of-age"),
    "science-fiction": ("sci-fi", "dystopia", "space"),
    "historical-fiction": ("historical", "ww2", "history"),
    "non-fiction": ("nonfiction", "self-help", "science"),
    "thriller": ("suspense", "crime", "action"),
    "classics": ("classic", "literature", "school"),
    "horror": ("scary", "supernatural", "ghosts"),
    "biography": ("memoir", "autobiography", "history"),
    "poetry": ("poems", "verse", "literature"),
    "comics": ("graphic-novels", "manga", "superheroes"),
    "paranormal": ("vampires", "urban-fantasy", "werewolves"),
    "children": ("picture-books", "kids", "childrens"),
    "contemporary": ("literary-fiction", "realistic-fiction", "family"),
}


def _gzip_ndjson(frame: pl.DataFrame) -> bytes:
    """The frame as JSON lines in one gzip member (fixed header time, so same rows give same bytes)."""
    buf = io.BytesIO()
    frame.write_ndjson(buf)
    return gzip.compress(buf.getvalue(), compresslevel=UCSD_GZIP_LEVEL, mtime=0)


def _ucsd_books_member(
    books: _UcsdBooks, csv_lo: int, csv_hi: int, ids: dict[str, np.ndarray], seed: int, chunk: int
) -> bytes:
    """One chunk of goodreads_books.json as a gzip member."""
    return _gzip_ndjson(_ucsd_book_frame(books, csv_lo, csv_hi, ids, seed, chunk))


def _two_decimals(x: pl.Expr) -> pl.Expr:
    """A number as text with exactly two decimals ("3.90")."""
    cents = (x * 100).round().cast(pl.Int64)
    return pl.format("{}.{}", cents // 100, (cents % 100).cast(pl.String).str.zfill(2))


def _ucsd_book_frame(
    books: _UcsdBooks, csv_lo: int, csv_hi: int, ids: dict[str, np.ndarray], seed: int, chunk: int
) -> pl.DataFrame:
    """goodreads_books.json rows for book csv ids ``csv_lo..csv_hi-1`` (all values strings)."""
    rng = _rng(seed, 12, chunk)
    rank = books.rank_of_csv[csv_lo:csv_hi]
    n = len(rank)
    genre = books.genre[rank].astype(np.int64)
    author = books.author[rank]
    a, n1 = rng.integers(0, len(_ADJ), n), rng.integers(0, len(_NOUN), n)
    n2 = (n1 + rng.integers(1, len(_NOUN), n)) % len(_NOUN)  # a second, different noun
    pattern = rng.integers(0, 3, n)
    series_word = (author * 7919 + 17) % (len(_ADJ) * len(_NOUN))  # one series name per author

    # Co-authors, illustrators, translators, editors on 8 % of books.
    author_ids = np.stack(
        [ids["author_id"][author], ids["author_id"][rng.integers(0, books.n_authors, n)]], axis=1
    )
    role = np.array(["", "Illustrator", "Translator", "Editor"], dtype=object)[
        rng.integers(0, 4, n)
    ]
    roles = np.stack([np.full(n, "", dtype=object), role], axis=1)
    has_second = rng.random(n) < 0.08
    authors = _struct_lists(
        {"author_id": author_ids, "role": roles}, np.stack([np.ones(n, bool), has_second], axis=1)
    )

    # Shelves scale with the written shelvings; listed by count, as in the real dump.
    shelved = books.shelved[rank]
    to_read = shelved * 3 + 1
    genre_share = rng.uniform(0.05, 0.4, n)
    g = len(UCSD_GENRES)
    vocab = np.array(
        [
            "to-read",
            *UCSD_GENRES,
            "currently-reading",
            *[e for k in UCSD_GENRES for e in _SHELF_EXTRA[k]],
            "favorites",
        ],
        dtype=object,
    )
    shelf_counts = np.stack(
        [to_read, to_read * genre_share, shelved // 4, to_read * genre_share / 3, shelved // 6],
        axis=1,
    ).astype(np.int64)
    shelf_names = np.stack(
        [
            np.zeros(n, np.int64),  # to-read
            1 + genre,  # the genre's shelf
            np.full(n, 1 + g),  # currently-reading
            2 + g + 3 * genre + rng.integers(0, 3, n),  # one of the genre's three extra shelves
            np.full(n, 2 + 4 * g),  # favorites
        ],
        axis=1,
    )
    order = np.argsort(-shelf_counts, axis=1, kind="stable")
    shelf_counts = np.take_along_axis(shelf_counts, order, axis=1)
    shelf_names = vocab[np.take_along_axis(shelf_names, order, axis=1)]
    shelves = _struct_lists({"count": shelf_counts, "name": shelf_names}, shelf_counts > 0)

    rated = books.rated[rank]
    quality_avg = np.clip(3.9 + 0.3 * books.quality[rank], 1, 5)
    frame = pl.DataFrame(
        {
            "book_id": ids["book_id"][rank],
            "work_id": ids["work_id"][rank],
            "a": a,
            "n1": n1,
            "n2": n2,
            "pattern": pattern,
            "s_adj": series_word % len(_ADJ),
            "s_noun": series_word // len(_ADJ),
            "pos": books.series_pos[rank],
            "year": np.clip(np.round(2017 - rng.exponential(9.0, n)), 1850, 2017).astype(np.int64),
            "no_year": rng.random(n) < 0.15,
            "average": np.where(
                rated > 0, books.star_sum[rank] / np.maximum(rated, 1), quality_avg
            ),
            "ratings_count": rated + rng.poisson(np.maximum(rated, 1) * 3.0),
            "image": rng.integers(1_000_000_000, 1_600_000_000, n),
            "has_image": rng.random(n) < 0.7,
        }
    )

    def word(words: list[str], column: str) -> pl.Expr:
        return pl.lit(pl.Series(words)).gather(pl.col(column))

    title = (
        pl.when(pl.col("pattern") == 0)
        .then(pl.concat_str([pl.lit("The "), word(_ADJ, "a"), pl.lit(" "), word(_NOUN, "n1")]))
        .when(pl.col("pattern") == 1)
        .then(
            pl.concat_str(
                [
                    word(_NOUN, "n1"),
                    pl.lit(" of the "),
                    word(_ADJ, "a"),
                    pl.lit(" "),
                    word(_NOUN, "n2"),
                ]
            )
        )
        .otherwise(pl.concat_str([word(_ADJ, "a"), pl.lit(" "), word(_NOUN, "n1")]))
    )
    series = pl.concat_str([word(_ADJ, "s_adj"), pl.lit(" "), word(_NOUN, "s_noun")])
    book_id = pl.col("book_id").cast(pl.String)
    image = pl.format("https://images.gr-assets.com/books/{}m/{}.jpg", pl.col("image"), book_id)
    no_photo = (
        "https://s.gr-assets.com/assets/nophoto/book/111x148-bcc042a9c91a29c1d680899eff700a03.png"
    )
    return frame.with_columns(title.alias("title_without_series")).select(
        book_id.alias("book_id"),
        pl.col("work_id").cast(pl.String),
        pl.when(pl.col("pos") > 0)
        .then(pl.format("{} ({}, #{})", pl.col("title_without_series"), series, pl.col("pos")))
        .otherwise(pl.col("title_without_series"))
        .alias("title"),
        "title_without_series",
        pl.lit(pl.Series("authors", authors)),
        pl.when(pl.col("no_year"))
        .then(pl.lit(""))
        .otherwise(pl.col("year").cast(pl.String))
        .alias("publication_year"),
        _two_decimals(pl.col("average")).alias("average_rating"),
        pl.col("ratings_count").cast(pl.String),
        pl.when(pl.col("has_image")).then(image).otherwise(pl.lit(no_photo)).alias("image_url"),
        pl.concat_str([pl.lit("https://www.goodreads.com/book/show/"), book_id]).alias("url"),
        pl.lit(pl.Series("popular_shelves", shelves)),
    )


def _struct_lists(fields: dict[str, np.ndarray], keep: np.ndarray) -> pa.Array:
    """Per row, a list of structs with string fields from the ``keep`` cells of each (rows, k) array."""
    offsets = np.concatenate([[0], np.cumsum(keep.sum(axis=1))]).astype(np.int32)
    columns = [pa.array(a[keep]).cast(pa.string()) for a in fields.values()]
    values = pa.StructArray.from_arrays(columns, names=list(fields))
    return pa.ListArray.from_arrays(pa.array(offsets), values)


def _hex_ids(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` random 32-character lowercase hex strings."""
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    digits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    out = np.empty((n, 32), dtype=np.uint8)
    out[:, 0::2] = digits[raw >> 4]
    out[:, 1::2] = digits[raw & 15]
    return out.view("S32").ravel().astype(str)


def generate_ucsd(
    dest: Path,
    *,
    n_interactions: int,
    n_users: int | None = None,
    n_books: int | None = None,
    seed: int = 42,
    chunk_rows: int = 5_000_000,
    progress: bool = True,
) -> dict[str, int]:
    """Write a synthetic dump in the UCSD Goodreads format (Wan & McAuley) in bounded memory.

    Files (columns as documented for the real dump):

    - ``goodreads_interactions.csv``: ``user_id,book_id,is_read,rating,is_reviewed`` with dense csv ids
      (``0..n_users-1``, ``0..n_books-1``), ordered by user, each user's rows by book id; no duplicate
      (user_id, book_id) pairs. ``rating`` 0 means shelved but not rated.
    - ``user_id_map.csv``: ``user_id_csv,user_id`` (32-character hex ids).
    - ``book_id_map.csv``: ``book_id_csv,book_id`` (distinct Goodreads-like integer ids).
    - ``goodreads_books.json.gz``: one JSON object per book, every value a string as in the real dump:
      book_id, work_id, title, title_without_series, authors (list of {"author_id", "role"}),
      publication_year ("" when unknown), average_rating, ratings_count, image_url, url,
      popular_shelves (list of {"count", "name"}, by count). Written as several gzip members
      (a valid gzip file; gzip, DuckDB and polars read it whole).
    - ``goodreads_book_authors.json.gz``: author_id, name, average_rating, ratings_count,
      text_reviews_count (the real dump's author file; optional for the loader).

    The model: books have a popularity rank; rank ``r`` belongs to genre ``r % 16``, and within a genre
    popularity falls off as ``(j + 3) ** -1.05`` (a long tail). Authors are runs of about 2.8 books of one
    genre and similar popularity; 55 % of authors with two or more books write them as a numbered series.
    Users' activity is log-normal (sigma 1.2, at least 1 interaction, at most half the books) summing
    exactly to ``n_interactions``. Each user has a favourite genre and a loyalty (Beta(2, 3)): each shelved
    book comes from the favourite genre with that probability, else from a genre drawn by overall genre
    share, then by popularity within the genre. About half of the rows are read (per-user Beta(2.5, 2.6)),
    about 93 % of read rows are rated (rated rows are read), and a few read rows are reviewed (per-user
    Beta(0.35, 2.2)). Stars follow a latent score ``0.55 * book quality + 0.5 * user bias + 0.45 *
    favourite-genre match + 0.7 * noise``, cut so that about 3/8/22/35/32 % of ratings are 1..5 stars.
    Book metadata follows the written rows: average_rating is the mean written star rating (or a
    quality-based value for books nobody rated), ratings_count is the written ratings plus a Poisson
    number of ratings from outside the dump (never fewer than written), shelf counts scale with
    the shelvings; titles, series ("Title (Series Name, #2)") and author names come from word lists.

    Users are generated in groups of 1,024, each with its own generator derived from ``seed``, and
    written as they are made: memory is bounded by ``chunk_rows`` plus a few arrays per book, and the
    bytes do not depend on ``chunk_rows``.

    Parameters
    ----------
    dest : pathlib.Path
        Output folder (created if missing).
    n_interactions : int
        Interaction rows to write (exact).
    n_users, n_books : int, optional
        Defaults scale the real dump's 876,145 users and 2,360,650 books by
        ``n_interactions / 228,648,342``; when both are defaulted and that would make the matrix
        denser than 2 %, both grow by the same factor until it is 2 % dense.
    seed : int
        Non-negative seed; same arguments give byte-identical files.
    chunk_rows : int
        Rows buffered before each write.
    progress : bool
        Show a progress bar.

    Returns
    -------
    dict of str to int
        Data rows written per file name.
    """
    if seed < 0:
        raise ValueError("seed must be >= 0")
    if n_interactions < 1 or chunk_rows < 1:
        raise ValueError("n_interactions and chunk_rows must be >= 1")
    users_n, books_n = _ucsd_sizes(n_interactions, n_users, n_books)
    if not 1 <= users_n <= n_interactions or books_n < 1:
        raise ValueError("need 1 <= n_users <= n_interactions and n_books >= 1")
    cap = max(1, books_n // 2)
    if users_n * cap < n_interactions:
        raise ValueError(
            f"{n_interactions} interactions do not fit {users_n} users x {books_n} books"
        )
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    log.info(
        "ucsd: %d interactions, %d users, %d books, seed %d", n_interactions, users_n, books_n, seed
    )

    books = _UcsdBooks(books_n, seed)
    per_user = _allocate(n_interactions, _rng(seed, 13).lognormal(0.0, 1.2, users_n), 1, cap)
    counts: dict[str, int] = {}

    buffered: list[dict[str, np.ndarray]] = []
    n_buffered = 0
    written = 0

    def flush(fh: BinaryIO) -> None:
        """Write the buffered groups, after adding them to the per-book counters."""
        nonlocal buffered, n_buffered, written
        if not buffered:
            return
        frame = pl.DataFrame({c: np.concatenate([p[c] for p in buffered]) for c in buffered[0]})
        rank, stars = frame["rank"].to_numpy(), frame["rating"].to_numpy()
        m = books.n
        books.shelved += np.bincount(rank, minlength=m)
        books.rated += np.bincount(rank, weights=stars > 0, minlength=m).astype(np.int64)
        books.star_sum += np.bincount(rank, weights=stars, minlength=m).astype(np.int64)
        books.reviewed += np.bincount(
            rank, weights=frame["is_reviewed"].to_numpy(), minlength=m
        ).astype(np.int64)
        frame.drop("rank").write_csv(fh, include_header=False)
        written += frame.height
        buffered, n_buffered = [], 0

    columns = ("user_id", "book_id", "is_read", "rating", "is_reviewed")
    bar = _progress(progress, "ucsd interactions", n_interactions)
    with open(dest / "goodreads_interactions.csv", "wb") as fh, bar as advance:
        fh.write((",".join(columns) + "\n").encode())
        firsts = range(0, users_n, UCSD_BLOCK_USERS)
        jobs = (
            (books, seed, g, f, per_user[f : f + UCSD_BLOCK_USERS]) for g, f in enumerate(firsts)
        )
        for part in _ordered_map(_ucsd_group, jobs):
            buffered.append(part)
            n_buffered += len(part["user_id"])
            advance(len(part["user_id"]))
            if n_buffered >= chunk_rows:
                flush(fh)
        flush(fh)
    counts["goodreads_interactions.csv"] = written

    id_rng = _rng(seed, 14)
    user_hex = _hex_ids(id_rng, users_n)
    pl.DataFrame({"user_id_csv": np.arange(users_n), "user_id": user_hex}).write_csv(
        dest / "user_id_map.csv"
    )
    counts["user_id_map.csv"] = users_n
    ids = {
        "book_id": _distinct_ints(id_rng, books_n, 1, max(36_500_000, 2 * books_n)),
        "work_id": _distinct_ints(id_rng, books_n, 1, max(58_000_000, 2 * books_n)),
        "author_id": _distinct_ints(
            id_rng, books.n_authors, 1, max(17_400_000, 2 * books.n_authors)
        ).astype(str),
    }
    pl.DataFrame(
        {"book_id_csv": np.arange(books_n), "book_id": ids["book_id"][books.rank_of_csv]}
    ).write_csv(dest / "book_id_map.csv")
    counts["book_id_map.csv"] = books_n

    # Chunks are built and compressed on two threads; each is one gzip member (a valid gzip file).
    chunks = (
        (books, lo, min(lo + UCSD_BOOK_CHUNK, books_n), ids, seed, c)
        for c, lo in enumerate(range(0, books_n, UCSD_BOOK_CHUNK))
    )
    with open(dest / "goodreads_books.json.gz", "wb") as fh:
        for member in _ordered_map(_ucsd_books_member, chunks):
            fh.write(member)
    counts["goodreads_books.json.gz"] = books_n

    arng = _rng(seed, 15)
    na = books.n_authors
    a_rated = np.bincount(books.author, weights=books.rated, minlength=na)
    a_sum = np.bincount(books.author, weights=books.star_sum, minlength=na)
    a_rev = np.bincount(books.author, weights=books.reviewed, minlength=na).astype(np.int64)
    a_avg = np.where(a_rated > 0, a_sum / np.maximum(a_rated, 1), 0.0)
    first = np.array(_FIRST)[arng.integers(0, len(_FIRST), na)]
    last = np.array(_LAST)[arng.integers(0, len(_LAST), na)]
    authors = pl.DataFrame(
        {
            "avg": a_avg,
            "author_id": ids["author_id"],
            "rev": a_rev,
            "first": first,
            "last": last,
            "n": a_rated,
        }
    ).select(
        _two_decimals(pl.col("avg")).alias("average_rating"),
        "author_id",
        pl.col("rev").cast(pl.String).alias("text_reviews_count"),
        pl.concat_str([pl.col("first"), pl.lit(" "), pl.col("last")]).alias("name"),
        pl.col("n").cast(pl.Int64).cast(pl.String).alias("ratings_count"),
    )
    (dest / "goodreads_book_authors.json.gz").write_bytes(_gzip_ndjson(authors))
    counts["goodreads_book_authors.json.gz"] = na
    log.info("ucsd written to %s: %s", dest, counts)
    return counts
