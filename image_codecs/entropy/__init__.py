"""Entropy models for latents: parameters to likelihoods (training) and to bytes (coding).

Bytes go through an entropy-coder backend (``coders.py``); networks never touch the coder
directly."""

from .base import LatentEntropyModel
from .coders import CdfTables, CorruptStreamError, IndexedCoder, LegacyRans, SafeAns, StreamDecoder
from .gaussian_hyperprior import GaussianHyperprior
from .msp_context import ProgressiveGaussian

__all__ = [
    "CdfTables",
    "CorruptStreamError",
    "GaussianHyperprior",
    "IndexedCoder",
    "LatentEntropyModel",
    "LegacyRans",
    "ProgressiveGaussian",
    "SafeAns",
    "StreamDecoder",
]
