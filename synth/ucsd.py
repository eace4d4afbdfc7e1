"""UCSD Goodreads-format files (interactions, id maps, books JSON) in bounded memory."""

from __future__ import annotations

import gzip
import io
import logging
import math
from pathlib import Path
from typing import BinaryIO

import numpy as np
import polars as pl
import pyarrow as pa

from synth.common import allocate, distinct_ints, ordered_map, progress_bar, rng_for

log = logging.getLogger(__name__)

# --- UCSD model constants (documented in generate_ucsd) -------------------------------------------
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
# Normal quantiles at the cumulative shares of 1..4 stars (3 %, 11 %, 33 %, 68 %) of rated UCSD
# rows.
UCSD_STAR_CUTS = np.array([-1.8808, -1.2265, -0.4399, 0.4677])


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
    """Book-side structure of the UCSD model, indexed by popularity rank within the whole
    catalogue."""

    def __init__(self, n_books: int, seed: int) -> None:
        rng = rng_for(seed, 10)
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
    """Interactions of one group of users, sorted by (user, book csv id), without duplicate
    pairs."""
    rng = rng_for(seed, 11, group)
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


_ADJ = [
    "Silent",
    "Hidden",
    "Broken",
    "Last",
    "Golden",
    "Lost",
    "Secret",
    "Dark",
    "Bright",
    "Wild",
    "Burning",
    "Frozen",
    "Crimson",
    "Silver",
    "Quiet",
    "Forgotten",
    "Endless",
    "Hollow",
    "Scarlet",
    "Distant",
    "Little",
    "Iron",
    "Glass",
    "Winter",
    "Summer",
    "Midnight",
    "Savage",
    "Gentle",
    "Stolen",
    "Shattered",
    "Wicked",
    "Sacred",
    "Hungry",
    "Restless",
    "Painted",
    "Velvet",
    "Falling",
    "Rising",
    "Drowned",
    "Empty",
]
_NOUN = [
    "River",
    "Garden",
    "House",
    "Kingdom",
    "Shadow",
    "Crown",
    "Road",
    "Sea",
    "Storm",
    "Heart",
    "Empire",
    "Witness",
    "Orchard",
    "Library",
    "Mountain",
    "Harbor",
    "Promise",
    "Letter",
    "Island",
    "Fire",
    "City",
    "Forest",
    "Queen",
    "Thief",
    "Daughter",
    "Wolf",
    "Tower",
    "Mirror",
    "Bridge",
    "Song",
    "Map",
    "Clock",
    "Station",
    "Archive",
    "Star",
    "Lantern",
    "Bone",
    "Feather",
    "Hunter",
    "Ghost",
    "Winter",
    "Game",
]
_FIRST = [
    "Anna",
    "James",
    "Maria",
    "John",
    "Emma",
    "Robert",
    "Sarah",
    "David",
    "Laura",
    "Michael",
    "Clara",
    "Daniel",
    "Nora",
    "Thomas",
    "Iris",
    "Peter",
    "Julia",
    "Samuel",
    "Lena",
    "Henry",
    "Alice",
    "Oliver",
    "Rosa",
    "Victor",
    "Helen",
    "Arthur",
    "Mira",
    "Felix",
    "Ruth",
    "Oscar",
    "Elena",
    "Hugo",
]
_LAST = [
    "Smith",
    "Carter",
    "Nguyen",
    "Walsh",
    "Moreno",
    "Fischer",
    "Okafor",
    "Lindqvist",
    "Brennan",
    "Haddad",
    "Kowalski",
    "Reyes",
    "Tanaka",
    "Dubois",
    "Novak",
    "Hughes",
    "Sato",
    "Romano",
    "Becker",
    "Silva",
    "Murphy",
    "Petrov",
    "Larsen",
    "Cohen",
    "Abbott",
    "Quinn",
    "Mercer",
    "Vance",
]
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
    """The frame as JSON lines in one gzip member (fixed header time, so same rows give same
    bytes)."""
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
    rng = rng_for(seed, 12, chunk)
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
    """Per row, a list of structs with string fields from the ``keep`` cells of each (rows, k)
    array."""
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

    - ``goodreads_interactions.csv``: ``user_id,book_id,is_read,rating,is_reviewed`` with dense csv
      ids (``0..n_users-1``, ``0..n_books-1``), ordered by user, each user's rows by book id; no
      duplicate (user_id, book_id) pairs. ``rating`` 0 means shelved but not rated.
    - ``user_id_map.csv``: ``user_id_csv,user_id`` (32-character hex ids).
    - ``book_id_map.csv``: ``book_id_csv,book_id`` (distinct Goodreads-like integer ids).
    - ``goodreads_books.json.gz``: one JSON object per book, every value a string as in the real
      dump: book_id, work_id, title, title_without_series, authors (list of {"author_id", "role"}),
      publication_year ("" when unknown), average_rating, ratings_count, image_url, url,
      popular_shelves (list of {"count", "name"}, by count). Written as several gzip members (a
      valid gzip file; gzip, DuckDB and polars read it whole).
    - ``goodreads_book_authors.json.gz``: author_id, name, average_rating, ratings_count,
      text_reviews_count (the real dump's author file; optional for the loader).

    The model: books have a popularity rank; rank ``r`` belongs to genre ``r % 16``, and within a
    genre popularity falls off as ``(j + 3) ** -1.05`` (a long tail). Authors are runs of about 2.8
    books of one genre and similar popularity; 55 % of authors with two or more books write them as
    a numbered series. Users' activity is log-normal (sigma 1.2, at least 1 interaction, at most
    half the books) summing exactly to ``n_interactions``. Each user has a favourite genre and a
    loyalty (Beta(2, 3)): each shelved book comes from the favourite genre with that probability,
    else from a genre drawn by overall genre share, then by popularity within the genre. About half
    of the rows are read (per-user Beta(2.5, 2.6)), about 93 % of read rows are rated (rated rows
    are read), and a few read rows are reviewed (per-user Beta(0.35, 2.2)). Stars follow a latent
    score ``0.55 * book quality + 0.5 * user bias + 0.45 * favourite-genre match + 0.7 * noise``,
    cut so that about 3/8/22/35/32 % of ratings are 1..5 stars. Book metadata follows the written
    rows: average_rating is the mean written star rating (or a quality-based value for books nobody
    rated), ratings_count is the written ratings plus a Poisson number of ratings from outside the
    dump (never fewer than written), shelf counts scale with the shelvings; titles, series ("Title
    (Series Name, #2)") and author names come from word lists.

    Users are generated in groups of 1,024, each with its own generator derived from ``seed``, and
    written as they are made: memory is bounded by ``chunk_rows`` plus a few arrays per book, and
    the bytes do not depend on ``chunk_rows``.

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
    per_user = allocate(n_interactions, rng_for(seed, 13).lognormal(0.0, 1.2, users_n), 1, cap)
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
    bar = progress_bar(progress, "ucsd interactions", n_interactions)
    with open(dest / "goodreads_interactions.csv", "wb") as fh, bar as advance:
        fh.write((",".join(columns) + "\n").encode())
        firsts = range(0, users_n, UCSD_BLOCK_USERS)
        jobs = (
            (books, seed, g, f, per_user[f : f + UCSD_BLOCK_USERS]) for g, f in enumerate(firsts)
        )
        for part in ordered_map(_ucsd_group, jobs):
            buffered.append(part)
            n_buffered += len(part["user_id"])
            advance(len(part["user_id"]))
            if n_buffered >= chunk_rows:
                flush(fh)
        flush(fh)
    counts["goodreads_interactions.csv"] = written

    id_rng = rng_for(seed, 14)
    user_hex = _hex_ids(id_rng, users_n)
    pl.DataFrame({"user_id_csv": np.arange(users_n), "user_id": user_hex}).write_csv(
        dest / "user_id_map.csv"
    )
    counts["user_id_map.csv"] = users_n
    ids = {
        "book_id": distinct_ints(id_rng, books_n, 1, max(36_500_000, 2 * books_n)),
        "work_id": distinct_ints(id_rng, books_n, 1, max(58_000_000, 2 * books_n)),
        "author_id": distinct_ints(
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
        for member in ordered_map(_ucsd_books_member, chunks):
            fh.write(member)
    counts["goodreads_books.json.gz"] = books_n

    arng = rng_for(seed, 15)
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
