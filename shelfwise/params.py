"""Typed hyper-parameters of each model kind; the params JSON of a run is one of these, serialised."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

KINDS: tuple[str, ...] = ("baseline", "svd", "als", "mf")
RATING_KINDS: tuple[str, ...] = ("baseline", "svd", "mf")
FACTOR_KINDS: tuple[str, ...] = ("svd", "als", "mf")


@dataclass(frozen=True)
class BaselineParams:
    reg_user: float = 5.0
    reg_book: float = 5.0
    iterations: int = 10


@dataclass(frozen=True)
class SvdParams:
    k: int = 18
    remove_biases: bool = True
    reg_user: float = 5.0
    reg_book: float = 5.0
    random_state: int = 42


@dataclass(frozen=True)
class AlsParams:
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


@dataclass(frozen=True)
class MfParams:
    factors: int = 32
    reg: float = 0.2
    reg_bias: float = 5.0
    iterations: int = 15
    init_scale: float = 0.1
    # SVD++ term (0 = plain biased MF): each user's taste also draws on which books they rated.
    implicit_reg: float = 100.0
    random_state: int = 42


PARAMS: dict[str, type] = {"baseline": BaselineParams, "svd": SvdParams, "als": AlsParams, "mf": MfParams}


@dataclass(frozen=True)
class PublishConfig:
    neighbours: int = 50
    tsne: bool = True
    keep_runs: int = 3


def make_params(kind: str, overrides: dict[str, Any] | None = None) -> Any:
    """Defaults of ``kind`` with ``overrides`` applied (unknown names are an error, not ignored)."""
    cls = PARAMS[kind]
    names = {f.name for f in dataclasses.fields(cls)}
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    unknown = set(overrides) - names
    if unknown:
        raise ValueError(f"{kind} has no parameter(s) {', '.join(sorted(unknown))}; it has {', '.join(sorted(names))}")
    return cls(**overrides)


def as_dict(params: Any) -> dict[str, Any]:
    return dataclasses.asdict(params)
