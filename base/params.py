"""Typed hyper-parameters of each model kind; the params JSON of a run is one of these,
serialised."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from base.errors import ParamError

# How ALS turns a rating into confidence (analytics.als.confidence_matrix implements each).
WEIGHTINGS: tuple[str, ...] = ("rating", "binary", "bm25")


def _check(
    params: Any,
    *,
    counts: tuple[str, ...] = (),
    positive: tuple[str, ...] = (),
    non_negative: tuple[str, ...] = (),
    choices: dict[str, tuple[Any, ...]] | None = None,
) -> None:
    """Refuse values no fit could use, before any work starts (one message naming the parameter)."""
    kind = type(params).__name__.removesuffix("Params").lower()
    for name in counts:
        value = getattr(params, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ParamError(f"{kind} {name}={value!r}: must be a whole number of at least 1")
    for name, strict in [(n, True) for n in positive] + [(n, False) for n in non_negative]:
        value = getattr(params, name)
        ok = (
            isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        )
        if not ok or value < 0 or (strict and value == 0):
            raise ParamError(
                f"{kind} {name}={value!r}: must be a finite number "
                f"{'above' if strict else 'of at least'} 0"
            )
    for name, allowed in (choices or {}).items():
        value = getattr(params, name)
        if value not in allowed:
            raise ParamError(
                f"{kind} {name}={value!r}: must be one of {', '.join(map(str, allowed))}"
            )
    seed = getattr(params, "random_state", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ParamError(f"{kind} random_state={seed!r}: must be a whole number of at least 0")


def parse_value(name: str, raw: str, default: Any) -> Any:
    """One command-line value of a parameter, typed like its default (``factors=abc`` is an
    error)."""
    raw = raw.strip()
    if isinstance(default, bool):
        words = {
            "1": True,
            "true": True,
            "yes": True,
            "on": True,
            "0": False,
            "false": False,
            "no": False,
            "off": False,
        }
        if raw.lower() not in words:
            raise ParamError(f"{name} takes true or false, not {raw!r}")
        return words[raw.lower()]
    if isinstance(default, int):
        try:
            return int(raw)
        except ValueError:
            raise ParamError(f"{name} takes a whole number, not {raw!r}") from None
    if isinstance(default, float):
        try:
            value = float(raw)
        except ValueError:
            raise ParamError(f"{name} takes a number, not {raw!r}") from None
        if not math.isfinite(value):
            raise ParamError(f"{name} takes a finite number, not {raw!r}")
        return value
    if not raw:
        raise ParamError(f"{name} takes a value, not an empty string")
    return raw


@dataclass(frozen=True)
class Params:
    """What every kind's params share: a check against the matrix a fit will see."""

    def check_fits(self, shape: tuple[int, int]) -> None:
        """Refuse values that cannot fit a matrix of ``shape`` (before any run is recorded)."""


@dataclass(frozen=True)
class NoParams(Params):
    """Kinds without hyper-parameters (the popularity and global-mean yardsticks)."""


@dataclass(frozen=True)
class BaselineParams(Params):
    reg_user: float = 5.0
    reg_book: float = 5.0
    iterations: int = 10

    def __post_init__(self) -> None:
        _check(self, counts=("iterations",), non_negative=("reg_user", "reg_book"))


@dataclass(frozen=True)
class SvdParams(Params):
    k: int = 18
    remove_biases: bool = True
    reg_user: float = 5.0
    reg_book: float = 5.0
    random_state: int = 42

    def __post_init__(self) -> None:
        _check(
            self,
            counts=("k",),
            non_negative=("reg_user", "reg_book"),
            choices={"remove_biases": (True, False)},
        )

    def check_fits(self, shape: tuple[int, int]) -> None:
        if self.k >= min(shape):
            raise ParamError(
                f"svd k={self.k}: must be below the matrix's smaller side, {min(shape):,}"
            )


@dataclass(frozen=True)
class AlsParams(Params):
    factors: int = 64
    # bm25 confidence (mean 1) needs a firm ridge, and where it sits depends on the data: on
    # validation carves NDCG@10 peaked near reg 25 on the bundled sample (2.8x popularity; it falls
    # off a cliff by 50) and at 50-200 on the real goodbooks subset. 25 with alpha 5 is good on both
    # (sample 2.6x, subset 1.4x against 1.1x for the old rating/0.05); `shelfwise tune als` refines.
    regularization: float = 25.0
    alpha: float = 5.0
    iterations: int = 15
    weighting: str = "bm25"
    min_rating: float = 0.0
    random_state: int = 42

    def __post_init__(self) -> None:
        _check(
            self,
            counts=("factors", "iterations"),
            positive=("alpha",),
            non_negative=("regularization", "min_rating"),
            choices={"weighting": WEIGHTINGS},
        )
        if self.min_rating > 5:
            raise ParamError(
                f"als min_rating={self.min_rating!r}: ratings run 1 to 5, so nothing would be left"
            )


@dataclass(frozen=True)
class MfParams(Params):
    factors: int = 32
    reg: float = 0.2
    reg_bias: float = 5.0
    iterations: int = 15
    init_scale: float = 0.1
    # SVD++ term (0 = plain biased MF): each user's taste also draws on which books they rated.
    implicit_reg: float = 100.0
    random_state: int = 42

    def __post_init__(self) -> None:
        _check(
            self,
            counts=("factors", "iterations"),
            positive=("init_scale",),
            non_negative=("reg", "reg_bias", "implicit_reg"),
        )


# How knn compares two books: their bias residuals (for rating prediction) or their weighted
# interactions (for ranking).
SIMILARITIES: tuple[str, ...] = ("pearson", "cosine")


@dataclass(frozen=True)
class KnnParams(Params):
    # Neighbours a rating prediction draws on at most, among those the user rated.
    k: int = 40
    # Neighbours stored per book (models.book_weights): predictions and scores use these alone.
    k_store: int = 200
    similarity: str = "pearson"
    # For similarity=cosine: how interactions are weighted before comparing (see AlsParams).
    weighting: str = "bm25"
    # n_ij / (n_ij + shrinkage) discounts similarities seen on few common readers.
    shrinkage: float = 100.0
    min_support: int = 2
    # Added to a prediction's weight sum: light neighbourhoods pull toward the baseline.
    damping: float = 0.5
    reg_user: float = 5.0
    reg_book: float = 5.0

    def __post_init__(self) -> None:
        _check(
            self,
            counts=("k", "k_store", "min_support"),
            non_negative=("shrinkage", "damping", "reg_user", "reg_book"),
            choices={"similarity": SIMILARITIES, "weighting": WEIGHTINGS},
        )


@dataclass(frozen=True)
class EaseParams(Params):
    # The ridge on B: larger trusts co-occurrence less.
    lam: float = 200.0
    # Weights stored per book (largest magnitude): the published model scores through these.
    k_store: int = 200
    # The dense inverse needs about 24 * n_books^2 bytes: 20,000 books is ~10 GB.
    max_books: int = 20_000

    def __post_init__(self) -> None:
        _check(self, counts=("k_store", "max_books"), positive=("lam",))

    def check_fits(self, shape: tuple[int, int]) -> None:
        if shape[1] > self.max_books:
            gigabytes = 24 * shape[1] ** 2 / 1e9
            raise ParamError(
                f"ease needs a dense {shape[1]:,} x {shape[1]:,} inverse (about {gigabytes:.0f} "
                f"GB): {shape[1]:,} books is above max_books={self.max_books:,}; raise it with "
                "-p max_books=N if the memory is there, or use knn"
            )


@dataclass(frozen=True)
class BlendParams(Params):
    # Comma-separated kinds whose latest published runs are combined; their weights are fitted
    # on a validation carve of the train split (stored in the run's info).
    components: str = ""
    validation_fraction: float = 0.15
    seed: int = 0

    def __post_init__(self) -> None:
        names = [c.strip() for c in self.components.split(",") if c.strip()]
        if len(names) < 2 or len(set(names)) != len(names):
            raise ParamError(
                f"blend components={self.components!r}: give two or more different kinds, "
                "comma-separated"
            )
        if not 0.0 < self.validation_fraction < 1.0:
            raise ParamError(
                f"blend validation_fraction={self.validation_fraction!r}: must be in (0, 1)"
            )

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(c.strip() for c in self.components.split(",") if c.strip())


@dataclass(frozen=True)
class RatingBlendParams(BlendParams):
    components: str = "mf,knn"


@dataclass(frozen=True)
class RankingBlendParams(BlendParams):
    # The set the validation carve ranked first on the real subset (benchmarks/RESULTS.md): mf's
    # predicted rating ("will like") beside als and EASE ("will read").
    components: str = "als,ease,mf"


def as_dict(params: Any) -> dict[str, Any]:
    """A params dataclass as the plain dict stored in a run's params JSON."""
    return dataclasses.asdict(params)
