"""The noise mechanisms, from OpenDP: no mechanism is written here.

Each function takes exact values computed by DuckDB and polars, the sensitivity of the
statistic (how much one patient can change it, after contribution bounding) and the epsilon
it may spend, and returns the noisy values and the noise scale:

* :func:`noisy_counts`: OpenDP's Laplace mechanism on integers (the discrete Laplace, or
  geometric, mechanism), scale = sensitivity / epsilon;
* :func:`noisy_sums`: the Laplace mechanism on floats, scale = sensitivity / epsilon;
* :func:`noisy_quantile`: OpenDP's private quantile (an exponential mechanism scoring a grid of
  candidates inside the measure's bounds); its scale is found with OpenDP's own privacy map.

The privacy loss of each measurement is checked with OpenDP's ``map`` before it is used, so a
wrong scale cannot silently spend more than asked.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import opendp.prelude as dp

__all__ = ["QUANTILE_CANDIDATES", "noisy_counts", "noisy_quantile", "noisy_sums"]

dp.enable_features("contrib")

#: The number of candidate values a private quantile chooses among (evenly spaced in the bounds).
QUANTILE_CANDIDATES = 201


@lru_cache(maxsize=256)
def _laplace(integer: bool, scale: float) -> Any:
    atom = dp.atom_domain(T=int) if integer else dp.atom_domain(T=float, nan=False)
    return dp.m.make_laplace(dp.vector_domain(atom), dp.l1_distance(T=int if integer else float), scale=scale)


def _checked(measurement: Any, d_in: int | float, epsilon: float) -> None:
    spent = float(measurement.map(d_in))
    if spent > epsilon * (1 + 1e-9):
        raise AssertionError(f"a mechanism would spend {spent} > {epsilon}")  # a bug here, never data


def noisy_counts(values: Sequence[int], *, sensitivity: int, epsilon: float) -> tuple[list[int], float]:
    """``values`` + discrete Laplace noise of scale ``sensitivity / epsilon`` (L1 sensitivity of the vector)."""
    scale = sensitivity / epsilon
    if not values:
        return [], scale
    measurement = _laplace(True, scale)
    _checked(measurement, int(sensitivity), epsilon)
    return [int(v) for v in measurement([int(v) for v in values])], scale


def noisy_sums(values: Sequence[float], *, sensitivity: float, epsilon: float) -> tuple[list[float], float]:
    """``values`` + Laplace noise of scale ``sensitivity / epsilon``."""
    scale = sensitivity / epsilon
    if not values:
        return [], scale
    measurement = _laplace(False, scale)
    _checked(measurement, float(sensitivity), epsilon)
    return [float(v) for v in measurement([float(v) for v in values])], scale


@lru_cache(maxsize=256)
def _quantile(bounds: tuple[float, float], alpha: float, scale: float) -> Any:
    low, high = bounds
    step = (high - low) / (QUANTILE_CANDIDATES - 1)
    candidates = [low + i * step for i in range(QUANTILE_CANDIDATES)]
    domain = dp.vector_domain(dp.atom_domain(T=float, nan=False))
    return dp.m.make_private_quantile(domain, dp.symmetric_distance(), dp.max_divergence(),
                                      candidates=candidates, alpha=alpha, scale=scale)


def noisy_quantile(values: Sequence[float], *, bounds: tuple[float, float], alpha: float, contributions: int,
                   epsilon: float) -> tuple[float, float]:
    """A private ``alpha``-quantile of ``values`` (each patient's value appears in at most
    ``contributions`` of the vectors this call releases), and the mechanism's scale."""
    unit = float(_quantile(bounds, alpha, 1.0).map(contributions))  # privacy loss at scale 1
    scale = unit / epsilon
    measurement = _quantile(bounds, alpha, scale)
    _checked(measurement, contributions, epsilon)
    clamped = [min(max(float(v), bounds[0]), bounds[1]) for v in values if not math.isnan(float(v))]
    return float(measurement(clamped)), scale
