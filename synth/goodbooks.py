"""goodbooks-10k-shaped ratings over the real books, with planted author, series and tag tastes."""

from __future__ import annotations

import csv
import gzip
import io
import logging
import math
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from queue import SimpleQueue

import numpy as np
import polars as pl
from threadpoolctl import threadpool_limits

from base.errors import BadInputError, InvalidArgument
from synth.common import allocate, ordered_map, progress_bar, rng_for

log = logging.getLogger(__name__)

# --- goodbooks model constants (documented in generate_goodbooks) ---------------------------------
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

_SERIES_RX = re.compile(r"\(([^()#]+?)[,\s]*#[^()]*\)\s*$")


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
    """Unit taste vectors per book (author + series + top tags + noise) and their author+series
    part."""
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
    """What users are made of: cluster centres and shares, and the author/series part of each
    book."""

    centres: np.ndarray  # (k, dim) unit
    share: np.ndarray  # (k,) cluster shares
    fandom: np.ndarray  # (books, dim) unit author+series direction of each book
    fav_p: np.ndarray  # (books,) probability that a book is the seed of a favourite author/series


def _gb_taste(
    v: np.ndarray, fandom: np.ndarray, popularity: np.ndarray, rng: np.random.Generator
) -> _GbTaste:
    """Taste-cluster centres anchored on popular books, cluster shares, favourite-seed
    probabilities."""
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
    """``b`` unit user vectors: 1-3 taste clusters, 1-4 favourite authors/series, a personal
    deviation."""
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
    rng = rng_for(seed, 3, block)
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
    r_user, r_book, r_tilt, t_user, t_book = (np.concatenate(c) for c in zip(*picked, strict=True))
    # By user; each user's rows in random order (the real file is in time order, not sampling
    # order).
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
    """Stars from each book's histogram: the book's raters ranked by score fill 1..5 in its
    proportions."""
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

    1. **Books.** Every book in ``books_csv`` (or, with ``n_books``, that many books with the
       highest ``ratings_count``, ties to the lower ``book_id``) gets a unit latent vector in 32
       dimensions, ``normalise(1.0 * author + 0.6 * series + 1.0 * tags + 0.45 * noise)``.
       ``author`` is a random unit vector per author name (first author fully, co-authors a third);
       ``series`` is a random unit vector per series name parsed from the title
       ("Angels & Demons  (Robert Langdon, #1)" -> "Robert Langdon"); ``tags`` sums random unit
       vectors of the book's 10 top tags in ``book_tags_csv``, weighted by ``log(1 + count) * idf``
       (so "to-read" counts for nothing; books without tags borrow their author's mean tag
       direction). Books by one author, in one series or on the same genre shelves point the same
       way. **The Dan Brown novels form a planted cluster** this way: they share the author vector,
       four share the "Robert Langdon" series vector, and their top tags overlap ("dan-brown",
       "brown-dan", "conspiracy", "robert-langdon"). Nothing in the code names them.
    2. **Users.** ``clip(round(sqrt(books) / 4), 2, 32)`` taste clusters (25 for 10,000 books) are
       centred on anchor books drawn with probability ~ ``sqrt(ratings_count)``, plus a random
       direction; cluster sizes are Dirichlet(2). A user's vector is ``normalise(cluster mix + 0.8 *
       fandom + 0.35 * noise)``: the cluster mix combines 1 (50 %), 2 (35 %) or 3 (15 %) clusters
       with Dirichlet(1) weights; ``fandom`` is the author+series direction of 1-4 favourite books
       drawn with probability ~ ``ratings_count ** 1.15``, so a user who is a fan of one Robert
       Langdon novel is a fan of the author and the series. Affinity is the cosine ``<user, book>``.
    3. **Activity.** Ratings per user are long-tailed: a floor of 17 % of the mean (19 at full size,
       the real minimum) plus a log-normal (sigma 0.7) share of the rest, capped at the number of
       books and summing exactly to ``n_ratings``. To-read counts are log-normal (sigma 1.3; 10 % of
       users have none) and total ``round(0.1527 * n_ratings)`` (912,705 at full size, as in the
       real dataset).
    4. **Which books.** Each user rates a weighted sample without replacement (Gumbel top-k) with
       weight ``ratings_count ** 1.15 * exp(12 * affinity) / m_b``, where ``m_b`` is the mean of
       ``exp(12 * affinity)`` over a pilot panel of 4,096 users: taste decides *who* rates a book,
       while each book's expected share still follows ``ratings_count`` (at full size the most rated
       book gets about 21,600 ratings, as The Hunger Games has 22,806 in the real file). To-read
       pairs continue the same sample after the rated books, so they are never rated pairs.
    5. **Stars.** Each rating gets a score ``0.7 * z + 0.45 * user_bias + 0.55 * noise``, where
       ``z`` is the user's affinity to the book standardised among that book's raters. Within each
       book, raters ranked by score fill 1..5 stars in the proportions of the book's real
       ``ratings_1..ratings_5``: per-book star distributions match the real histograms, and users
       who like a book's author, series or genre rate it higher.

    What this gives at full size (seed 42): Spearman 0.99 between ``ratings_count`` and ratings per
    book; 73 % of The Da Vinci Code's 9,806 raters also rate another Dan Brown novel, against 31 %
    of all users; those who gave it 4-5 stars rate the other Dan Brown novels 4.20 on average, those
    who gave it 1-3 stars 3.38.

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
            f"{n_ratings:,} ratings cannot give each of {n_users:,} users one: "
            "ask for at least as many ratings as users"
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
    v, fandom = _book_vectors(books, tag_rows, rng_for(seed, 0))
    popularity = np.maximum(books["ratings_count"].to_numpy(), 1)
    taste = _gb_taste(v, fandom, popularity, rng_for(seed, 1))
    # Normalise the taste tilt per book over a pilot panel of users, so that a book's expected
    # selection weight stays ratings_count ** a: structure reorders users, not the popularity tail.
    pilot = _gb_users(rng_for(seed, 4), GB_PILOT_USERS, taste)
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
    arng = rng_for(seed, 2)
    mean = n_ratings / n_users
    lo = int(min(19, max(1, math.floor(GB_MIN_USER_SHARE * mean))))
    n_rate = allocate(n_ratings, arng.lognormal(0.0, GB_USER_SIGMA, n_users), lo, nb)
    read_w = arng.lognormal(0.0, 1.3, n_users) * (arng.random(n_users) < 0.9)
    n_read_total = min(round(GB_TO_READ_SHARE * n_ratings), int((nb - n_rate).sum()))
    n_read = allocate(n_read_total, read_w, 0, nb - n_rate)

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
        progress_bar(progress, "goodbooks ratings", n_ratings) as advance,
        threadpool_limits(1, user_api="blas"),
    ):
        for part in ordered_map(_gb_block, jobs, workers=GB_WORKERS):
            parts.append(part)
            advance(len(part[0]))
    r_user, r_book, r_aff, r_bias, r_noise, t_user, t_book = (
        np.concatenate(c) for c in zip(*parts, strict=True)
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
