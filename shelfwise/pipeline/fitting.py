"""Fit one kind on a matrix: the registry's pure function, nothing else."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp

from analytics.factors import FactorModel
from base.registry import spec


def fit_function(kind: str) -> Callable[..., FactorModel]:
    """The pure fitting function the registry names for ``kind`` (looked up at call time)."""
    module, _, name = spec(kind).fit.partition(":")
    return getattr(importlib.import_module(module), name)


def fit_model(
    kind: str,
    train: sp.csr_matrix,
    params: Any,
    *,
    on_iteration: Callable[[int, float], None] | None = None,
) -> FactorModel:
    """Fit ``kind`` on ``train`` with its typed params (the registry's function, nothing else)."""
    params.check_fits(train.shape)
    if np.any(train.data == 0):
        # Stored zeros are missing ratings, not ratings of 0, for every kind.
        train = sp.csr_matrix(train, copy=True)
        train.eliminate_zeros()
    fit = fit_function(kind)
    if on_iteration is not None and "on_iteration" in inspect.signature(fit).parameters:
        return fit(train, params, on_iteration=on_iteration)
    return fit(train, params)
