"""Optical flow estimators and backward warping (leaf package: torch, numpy and OpenCV only).

Contract: ``estimator(cur, ref)`` -> flow N x 2 x H x W in pixels with
``warp(ref, flow) ~= cur`` (see ``base.MotionEstimator`` and ``warp.warp``).
"""

from .base import MotionEstimator
from .correlation import Correlation, CorrelationExtensionUnavailableError
from .registry import UnknownEstimatorError, build_estimator, estimator_class, estimator_names
from .warp import warp

__all__ = [
    "Correlation",
    "CorrelationExtensionUnavailableError",
    "MotionEstimator",
    "UnknownEstimatorError",
    "build_estimator",
    "estimator_class",
    "estimator_names",
    "warp",
]
