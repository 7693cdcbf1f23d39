"""Plain learners on each sample's pooled features (the mean voice and mean face feature vectors):
what the head must at least match on an interaction, on the same splits.

Each learner's strength (ridge's alpha, logistic's C, the MLP's weight decay) is chosen on the
valid split by its correlation with the scores; the test correlation of that choice is reported.
Logistic regression learns whether a score is above the training mean and predicts its
probability, which ranks samples as a score does (corr is the benchmark's metric).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import PolynomialFeatures, StandardScaler

from train.interaction_cases import corr

STRENGTHS = 10.0 ** np.arange(-2, 5)  # ridge alpha; logistic C is its inverse
MLP_DECAYS = 10.0 ** np.arange(-4, 1)


def _ridge(degree: int) -> Iterable[BaseEstimator]:
    return (make_pipeline(PolynomialFeatures(degree), StandardScaler(), Ridge(alpha)) for alpha in STRENGTHS)


def _logistic(degree: int) -> Iterable[BaseEstimator]:
    return (make_pipeline(PolynomialFeatures(degree), StandardScaler(), LogisticRegression(C=1 / alpha, max_iter=2000))
            for alpha in STRENGTHS)


def _mlp() -> Iterable[BaseEstimator]:
    return (make_pipeline(StandardScaler(), MLPRegressor(hidden_layer_sizes=(32,), alpha=decay, max_iter=500, early_stopping=False,
                                                         random_state=0))
            for decay in MLP_DECAYS)


BASELINES: dict[str, Callable[[], Iterable[BaseEstimator]]] = {
    "ridge": lambda: _ridge(1),
    "logistic": lambda: _logistic(1),
    "ridge, degree 2": lambda: _ridge(2),
    "logistic, degree 2": lambda: _logistic(2),
    "MLP (32 hidden)": _mlp,
}


def _predict(model: BaseEstimator, x: np.ndarray) -> np.ndarray:
    if hasattr(model, "predict_proba"):
        return model.predict_proba(x)[:, 1]
    return model.predict(x)


def _fit(model: BaseEstimator, x: np.ndarray, y: np.ndarray) -> BaseEstimator:
    target = (y > y.mean()).astype(int) if hasattr(model, "predict_proba") else y
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(x, target)


def best_on_valid(candidates: Iterable[BaseEstimator], train: tuple[np.ndarray, np.ndarray],
                  valid: tuple[np.ndarray, np.ndarray]) -> BaseEstimator:
    """The candidate, fitted on train, whose predictions correlate best with the valid scores."""
    fitted = [_fit(model, *train) for model in candidates]
    return max(fitted, key=lambda model: corr(_predict(model, valid[0]), valid[1]))


def pooled_ridge_scores(train: tuple[np.ndarray, np.ndarray], valid: tuple[np.ndarray, np.ndarray],
                        test: tuple[np.ndarray, np.ndarray]) -> float:
    """Test corr of ridge on degree 1 or 2, the degree and the strength chosen together on valid
    (train.learning's plain-learner column)."""
    return corr(_predict(best_on_valid([*_ridge(1), *_ridge(2)], train, valid), test[0]), test[1])


def baseline_scores(train: tuple[np.ndarray, np.ndarray], valid: tuple[np.ndarray, np.ndarray],
                    test: tuple[np.ndarray, np.ndarray]) -> dict[str, float]:
    """Test corr of every baseline, each with its strength chosen on valid; (features, scores) per split."""
    return {name: corr(_predict(best_on_valid(make(), train, valid), test[0]), test[1])
            for name, make in BASELINES.items()}
