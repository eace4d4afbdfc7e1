"""The model registry: every kind declared once; every list of kinds in the product derives from it.

A kind is a params dataclass (``base.params``), a pure fitting function in ``analytics/`` named as
``"module:function"`` (resolved only where fits run, so this layer imports nothing of ours), and
what the rest of the product may do with a fitted run: predict ratings, rank, draw book maps and
cosine neighbours, show learned biases. Adding a kind is one ``analytics/`` module plus one entry
here; the CLI's choices, ``tune``'s axes, ``evaluate``, ``refresh --kinds``, the dashboard's pickers
and the kind table in docs/models.md all read this module.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from base.errors import ParamError, ShelfwiseError
from base.params import (
    AlsParams,
    BaselineParams,
    EaseParams,
    KnnParams,
    MfParams,
    NoParams,
    RankingBlendParams,
    RatingBlendParams,
    SvdParams,
)

# A tune search space: one axis (name -> values) or a block of axes searched jointly
# (tuple of names -> {name: values}, every combination). See analytics.search.
Space = Mapping[str | tuple[str, ...], Any]


@dataclass(frozen=True)
class KindSpec:
    """One model kind and what a published run of it offers.

    Attributes
    ----------
    name : str
        The kind's id: CLI argument, ``models.runs.kind``, dashboard value.
    label : str
        How pages and tables name it.
    colour : str
        Its colour wherever kinds are compared (Okabe-Ito, tellable apart).
    params : type
        Frozen dataclass of its hyper-parameters; a run's params JSON is one, serialised.
    fit : str
        ``"module:function"`` of the pure fitting function, ``fit(train, params) -> FactorModel``.
    predicts_ratings : bool
        Scored by RMSE; ``recommend`` shows a predicted rating.
    book_vectors : bool
        Stores book factors: 2-D maps, cosine neighbours, favourites' centroid.
    learned_biases : bool
        Its book and user biases are learned rating offsets (the Biases page).
    book_weights : bool
        Stores item-item weights (``models.book_weights``): it scores through them and the
        reader's own ratings, and its neighbours are its heaviest weights.
    blend : bool
        Combines the latest published runs of the kinds its params name, with weights fitted on
        a validation carve; refitted whenever one of them is.
    stores : tuple of str
        The ``models.*`` tables a run of it fills besides runs/run_books/run_users.
    objective : str
        What ``tune`` optimises on the validation carve: ``"rmse"`` or ``"ndcg@10"``.
    space : Space
        ``tune``'s default search space (names are fields of ``params``).
    default : bool
        ``refresh`` keeps it fresh unless ``--kinds`` says otherwise.
    yardstick : bool
        A reference ``evaluate`` refits on every run (popularity, global mean); never fitted by
        hand.
    engines : tuple of str
        Where it can be fitted (``base.config.ENGINES``): ``local`` always; ``spark`` where
        ``shelfwise.pipeline.spark`` has a Spark MLlib fit of it.
    fold_in : str or None
        ``"module:function"`` folding a new reader into a published run from its tables alone
        (``fold_in(model, feedback, params) -> FoldIn``); blends fold in their components.
    """

    name: str
    label: str
    colour: str
    params: type
    fit: str
    predicts_ratings: bool
    book_vectors: bool
    learned_biases: bool
    stores: tuple[str, ...]
    book_weights: bool = False
    blend: bool = False
    objective: str = "rmse"
    space: Space = field(default_factory=dict)
    default: bool = True
    yardstick: bool = False
    engines: tuple[str, ...] = ("local",)
    fold_in: str | None = None

    @property
    def ranks(self) -> bool:
        """Every kind ranks books (the global mean only ties them all)."""
        return self.name != "global_mean"

    @property
    def neighbours(self) -> bool:
        """Publishes per-book neighbours (cosine of vectors, or heaviest weights)."""
        return self.book_vectors or self.book_weights


# The model that answers when none is named (CLI, API, dashboard, digest), per task: kinds best
# first as measured on the real subset after tuning (benchmarks/RESULTS.md, "Real ratings"; for
# neighbours, the same-author share of "Neighbour quality"). The first with a published run
# answers, so a warehouse that lacks the best kind still answers with the next.
PREFERRED: dict[str, tuple[str, ...]] = {
    # predicted ratings (`predict`)
    "ratings": ("rating_blend", "knn", "mf", "svd", "baseline"),
    # top-N lists (`recommend --user/--reader`, the reader digest, the Users and For you pages)
    "ranking": ("ranking_blend", "ease", "als", "knn", "mf", "rating_blend", "svd", "baseline"),
    # similar books, favourites lists and maps (kinds with book vectors or weights)
    "neighbours": ("als", "knn", "ease", "mf", "svd"),
}


def preferred(task: str, available: Iterable[str]) -> str | None:
    """The best kind for ``task`` (PREFERRED) among ``available``, or None."""
    have = set(available)
    return next((k for k in PREFERRED[task] if k in have), None)


REGISTRY: dict[str, KindSpec] = {
    spec.name: spec
    for spec in (
        KindSpec(
            name="global_mean",
            label="global mean",
            colour="#9aa5b1",
            params=NoParams,
            fit="analytics.baseline:fit_global_mean",
            predicts_ratings=True,
            book_vectors=False,
            learned_biases=False,
            stores=(),
            default=False,
            yardstick=True,
        ),
        KindSpec(
            name="popularity",
            label="popularity",
            colour="#CC79A7",
            params=NoParams,
            fit="analytics.baseline:fit_popularity",
            predicts_ratings=False,
            book_vectors=False,
            # book_bias holds rating counts here, which are not a learned bias.
            learned_biases=False,
            stores=("book_bias",),
            default=False,
            yardstick=True,
        ),
        KindSpec(
            name="baseline",
            fold_in="analytics.foldin:fold_in_baseline",
            label="baseline (biases)",
            colour="#56B4E9",
            params=BaselineParams,
            fit="analytics.baseline:fit_biases",
            predicts_ratings=True,
            book_vectors=False,
            learned_biases=True,
            stores=("user_bias", "book_bias"),
            space={
                "reg_user": [1.0, 2.0, 3.0, 5.0, 8.0, 13.0],
                "reg_book": [2.0, 5.0, 10.0, 20.0, 40.0],
            },
        ),
        KindSpec(
            name="svd",
            fold_in="analytics.foldin:fold_in_svd",
            label="SVD",
            colour="#0072B2",
            params=SvdParams,
            fit="analytics.svd:fit_svd",
            predicts_ratings=True,
            book_vectors=True,
            learned_biases=True,
            stores=("user_bias", "book_bias", "user_factors", "book_factors"),
            space={
                "k": [2, 4, 8, 12, 18, 24, 32, 48],
                "remove_biases": [True, False],
                "reg_user": [2.0, 3.0, 5.0, 8.0],
                "reg_book": [5.0, 10.0, 20.0],
            },
        ),
        KindSpec(
            name="als",
            fold_in="analytics.foldin:fold_in_als",
            label="ALS (implicit)",
            colour="#E69F00",
            params=AlsParams,
            fit="analytics.als:fit_als",
            predicts_ratings=False,
            book_vectors=True,
            learned_biases=False,
            stores=("user_factors", "book_factors"),
            engines=("local", "spark"),
            objective="ndcg@10",
            # ALS's regularisation is absolute while its confidence scales with alpha and the
            # weighting, so these three are searched jointly: one at a time gets stuck.
            space={
                ("weighting", "alpha", "regularization"): {
                    "weighting": ["rating", "binary", "bm25"],
                    "alpha": [2.0, 10.0, 30.0, 100.0],
                    "regularization": [10.0, 50.0, 200.0, 500.0],
                },
                "factors": [16, 32, 64, 128, 256],
            },
        ),
        KindSpec(
            name="mf",
            fold_in="analytics.foldin:fold_in_mf",
            label="MF (biased)",
            colour="#009E73",
            params=MfParams,
            fit="analytics.mf:fit_mf",
            predicts_ratings=True,
            book_vectors=True,
            learned_biases=True,
            stores=("user_bias", "book_bias", "user_factors", "book_factors"),
            engines=("local", "spark"),
            # iterations is chosen by early stopping on the carve, so it is not an axis.
            space={
                "implicit_reg": [0.0, 30.0, 60.0, 100.0, 300.0],
                "reg": [0.15, 0.2, 0.22, 0.25, 0.3],
                "factors": [16, 32, 64],
                "reg_bias": [2.0, 5.0, 10.0],
            },
        ),
        KindSpec(
            name="knn",
            fold_in="analytics.foldin:fold_in_weights",
            label="item kNN",
            colour="#D55E00",
            params=KnnParams,
            fit="analytics.knn:fit_knn",
            predicts_ratings=True,
            book_vectors=False,
            learned_biases=True,
            book_weights=True,
            stores=("user_bias", "book_bias", "book_weights", "book_neighbours"),
            space={
                "shrinkage": [25.0, 50.0, 100.0, 300.0],
                "damping": [0.1, 0.5, 1.0, 2.0],
                "k": [20, 40, 80, 200],
            },
        ),
        KindSpec(
            name="ease",
            fold_in="analytics.foldin:fold_in_weights",
            label="EASE",
            colour="#CC6677",
            params=EaseParams,
            fit="analytics.ease:fit_ease",
            predicts_ratings=False,
            book_vectors=False,
            learned_biases=False,
            book_weights=True,
            stores=("book_weights", "book_neighbours"),
            objective="ndcg@10",
            space={"lam": [20.0, 50.0, 100.0, 200.0, 500.0, 1000.0]},
        ),
        KindSpec(
            name="rating_blend",
            fold_in="analytics.foldin:fold_in_blend",
            label="rating blend",
            colour="#332288",
            params=RatingBlendParams,
            fit="analytics.blend:blend_weights",
            predicts_ratings=True,
            book_vectors=False,
            learned_biases=False,
            blend=True,
            stores=(),
        ),
        KindSpec(
            name="ranking_blend",
            fold_in="analytics.foldin:fold_in_blend",
            label="ranking blend",
            colour="#882255",
            params=RankingBlendParams,
            fit="analytics.blend:blend_weights",
            predicts_ratings=False,
            book_vectors=False,
            learned_biases=False,
            blend=True,
            stores=(),
            objective="ndcg@10",
        ),
    )
}


def spec(kind: str) -> KindSpec:
    """The registry entry of ``kind``, or a one-line error listing the kinds there are."""
    try:
        return REGISTRY[kind]
    except KeyError:
        raise ShelfwiseError(
            f"unknown model kind {kind!r}; choose from {', '.join(fittable())}"
        ) from None


def kinds(
    *,
    yardstick: bool | None = False,
    predicts_ratings: bool | None = None,
    book_vectors: bool | None = None,
    learned_biases: bool | None = None,
    book_weights: bool | None = None,
    neighbours: bool | None = None,
    blend: bool | None = None,
    default: bool | None = None,
) -> tuple[str, ...]:
    """Names of the kinds matching every given flag, in registry order (None: either way)."""
    wanted = {
        "yardstick": yardstick,
        "predicts_ratings": predicts_ratings,
        "book_vectors": book_vectors,
        "learned_biases": learned_biases,
        "book_weights": book_weights,
        "neighbours": neighbours,
        "blend": blend,
        "default": default,
    }
    return tuple(
        name
        for name, s in REGISTRY.items()
        if all(value is None or getattr(s, flag) == value for flag, value in wanted.items())
    )


def fittable() -> tuple[str, ...]:
    """Kinds a user fits, tunes and refreshes (every kind but the yardsticks)."""
    return kinds()


def make_params(kind: str, overrides: Mapping[str, Any] | None = None) -> Any:
    """Defaults of ``kind`` with ``overrides`` applied (unknown names are an error, not ignored)."""
    cls = spec(kind).params
    names = {f.name for f in dataclasses.fields(cls)}
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    unknown = set(given) - names
    if unknown:
        raise ParamError(
            f"{kind} has no parameter(s) {', '.join(sorted(unknown))}; "
            f"it has {', '.join(sorted(names)) or 'none'}"
        )
    return cls(**given)


def param_defaults(kind: str) -> dict[str, Any]:
    """Each hyper-parameter of ``kind`` and its default."""
    return {f.name: f.default for f in dataclasses.fields(spec(kind).params)}
