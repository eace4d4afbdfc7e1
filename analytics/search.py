"""Hyper-parameter search maths: a seeded validation carve of the train split, coordinate search."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

# A search space: one axis (name -> values) or a block of axes searched jointly
# (tuple of names -> {name: values}, every combination), for parameters that only make sense
# together. Keys come in the order that matters most.
Space = Mapping[str | tuple[str, ...], Any]


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: a well-mixed uint64 hash of each uint64."""
    x = x.astype(np.uint64, copy=True)
    with np.errstate(over="ignore"):
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return x


def carve_validation(
    train: sp.csr_matrix, *, fraction: float = 0.15, random_state: int = 0
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Split the training cells into (fit, validation), by a seeded hash of each (user, book).

    A cell's side depends only on its own indices and the seed, never on other cells or their
    ratings, so the carve is reproducible and cannot be moved by anything outside ``train``.

    Parameters
    ----------
    train : csr_matrix, shape (n_users, n_books)
        The train split; the test split is never an input.
    fraction : float
        Share of train cells held out for validation, in (0, 1).
    random_state : int
        Seed of the hash.

    Returns
    -------
    (fit, validation) : csr_matrix, same shape and dtype, partitioning ``train``'s stored cells.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"validation fraction must be in (0, 1), got {fraction}")
    train = sp.csr_matrix(train)
    users = np.repeat(np.arange(train.shape[0], dtype=np.uint64), np.diff(train.indptr))
    cell = users * np.uint64(train.shape[1]) + train.indices.astype(np.uint64)
    seed = _mix64(np.array([random_state % (1 << 64)], dtype=np.uint64))[0]
    with np.errstate(over="ignore"):
        u = _mix64(cell ^ seed) >> np.uint64(11)  # 53 bits -> a uniform double in [0, 1)
    held = u.astype(np.float64) / float(1 << 53) < fraction

    def part(mask: np.ndarray) -> sp.csr_matrix:
        indptr = np.zeros(train.shape[0] + 1, dtype=np.int64)
        np.cumsum(
            np.bincount(users[mask].astype(np.int64), minlength=train.shape[0]), out=indptr[1:]
        )
        return sp.csr_matrix((train.data[mask], train.indices[mask], indptr), shape=train.shape)

    return part(~held), part(held)


def axis_names(space: Space) -> list[str]:
    """Every parameter name a space searches, in order."""
    return [n for key in space for n in (key if isinstance(key, tuple) else (key,))]


def moves(space: Space) -> list[list[dict[str, Any]]]:
    """Each key of a space as the list of partial points it tries."""
    out = []
    for key, values in space.items():
        if isinstance(key, tuple):
            out.append(
                [
                    dict(zip(key, combo, strict=True))
                    for combo in itertools.product(*(values[n] for n in key))
                ]
            )
        else:
            out.append([{key: v} for v in values])
    return out


def with_axes(
    space: Space, given: Mapping[str, list[Any]], *, only: bool = False
) -> dict[str | tuple[str, ...], Any]:
    """``space`` with some axes' values replaced (inside a block too) and new axes added, or
    only ``given`` when ``only``."""
    if only:
        return dict(given)
    out: dict[str | tuple[str, ...], Any] = {}
    for key, values in space.items():
        if isinstance(key, tuple):
            out[key] = {n: list(given.get(n, values[n])) for n in key}
        else:
            out[key] = list(given.get(key, values))
    for name, values in given.items():
        if name not in axis_names(out):
            out[name] = list(values)
    return out


@dataclass(frozen=True)
class Trial:
    """One point tried: the params it chose (a full dict), its validation value, fit seconds."""

    params: dict[str, Any]
    value: float
    seconds: float


def coordinate_search(
    space: Space,
    score: Callable[[dict[str, Any]], Trial],
    *,
    bigger_is_better: bool,
    passes: int = 2,
) -> tuple[Trial, list[Trial]]:
    """Coordinate search from the defaults (the empty point).

    Try every value of one axis (every combination of a block) with the others held at the best
    so far, keep the best, move to the next axis; repeat up to ``passes`` times or until a pass
    changes nothing. ``score(point)`` fits and scores a partial point (names missing from it are
    at their defaults); it is expected to cache, so a point met twice costs nothing.

    Returns
    -------
    (best trial, every trial scored, in order)
    """
    sign = -1.0 if bigger_is_better else 1.0
    seen: list[Trial] = []

    def scored(point: dict[str, Any]) -> Trial:
        trial = score(point)
        if not any(t is trial for t in seen):
            seen.append(trial)
        return trial

    best: dict[str, Any] = {}
    best_trial = scored(best)
    for _ in range(max(1, passes)):
        changed = False
        for options in moves(space):
            for option in options:
                candidate = {**best, **option}
                trial = scored(candidate)
                if sign * trial.value < sign * best_trial.value - 1e-12:
                    best, best_trial, changed = candidate, trial, True
        if not changed:
            break
    return best_trial, seen
