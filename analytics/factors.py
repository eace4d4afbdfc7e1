"""The fitted-model value every kind returns: biases and/or factors, with prediction and scoring."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class FactorModel:
    """A fitted model over ``n_users`` x ``n_books``.

    Predicted rating:
    ``global_mean + user_bias[u] + book_bias[i] + user_factors[u] @ book_factors[i]``,
    each term present only when the kind has it. Implicit models (ALS) predict preference, not
    rating.

    Attributes
    ----------
    kind : str
    global_mean : float
    user_bias, book_bias : ndarray of float64, shape (n_users,) and (n_books,), or None
    user_factors, book_factors : ndarray of float32, shape (n_users, k) and (n_books, k), or None
    book_implicit : ndarray of float32, shape (n_books, k + 1), or None
        mf's SVD++ book vectors (see analytics.mf), for folding in new readers.
    predicts_ratings : bool
        False for implicit-feedback models, whose scores only rank.
    info : dict
        Fit diagnostics (iterations, training loss...), stored with the run.
    """

    kind: str
    global_mean: float = 0.0
    user_bias: np.ndarray | None = None
    book_bias: np.ndarray | None = None
    user_factors: np.ndarray | None = None
    book_factors: np.ndarray | None = None
    predicts_ratings: bool = True
    info: dict = field(default_factory=dict)
    # mf's SVD++ vectors y (n_books, k + 1; the last column the implicit bias term): already
    # folded into user_factors and user_bias, kept so a new reader can be folded in exactly.
    book_implicit: np.ndarray | None = None

    def with_history(self, history: object) -> FactorModel:
        """The same model: factor models score from their own vectors, not the users' ratings."""
        return self

    @property
    def n_factors(self) -> int:
        return 0 if self.book_factors is None else int(self.book_factors.shape[1])

    def predict(self, users: np.ndarray, books: np.ndarray) -> np.ndarray:
        """Predicted ratings for pairs, float64 shape (n,); clipped to the 1..5 scale."""
        if not self.predicts_ratings:
            raise ValueError(f"{self.kind} scores rank books; it does not predict ratings")
        out = np.full(len(users), self.global_mean, dtype=np.float64)
        if self.user_bias is not None:
            out += self.user_bias[users]
        if self.book_bias is not None:
            out += self.book_bias[books]
        if self.user_factors is not None and self.book_factors is not None:
            out += np.einsum(
                "ij,ij->i", self.user_factors[users], self.book_factors[books], dtype=np.float64
            )
        return np.clip(out, 1.0, 5.0)

    def scores(self, users: np.ndarray) -> np.ndarray:
        """Ranking scores of every book for each user, float32 shape (len(users), n_books).

        The user's own bias is the same for every book, so it is left out: it cannot change a
        ranking.
        """
        n_books = self._n_books()
        out = np.zeros((len(users), n_books), dtype=np.float32)
        if self.book_bias is not None:
            out += self.book_bias.astype(np.float32)[None, :]
        if self.user_factors is not None and self.book_factors is not None:
            out += self.user_factors[users] @ self.book_factors.T
        return out

    def _n_books(self) -> int:
        if self.book_factors is not None:
            return self.book_factors.shape[0]
        if self.book_bias is not None:
            return self.book_bias.shape[0]
        raise ValueError("model has neither book factors nor book biases")
