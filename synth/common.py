"""Helpers both generators share: seeded streams, progress, ordered threads, allocations."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

import numpy as np

log = logging.getLogger(__name__)
T = TypeVar("T")


def rng_for(seed: int, *stream: int) -> np.random.Generator:
    """An independent generator for one named stream of one seed (same inputs, same numbers)."""
    return np.random.default_rng([seed, *stream])


@contextmanager
def progress_bar(enabled: bool, description: str, total: int) -> Iterator[Callable[[int], None]]:
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


def ordered_map(
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


def allocate(total: int, weights: np.ndarray, lo: int, cap: np.ndarray | int) -> np.ndarray:
    """Split ``total`` into integers in ``[lo, cap]`` roughly proportional to ``weights`` above
    ``lo``.

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


def distinct_ints(rng: np.random.Generator, n: int, low: int, high: int) -> np.ndarray:
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
