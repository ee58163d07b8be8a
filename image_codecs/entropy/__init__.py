"""Entropy models for latents: they turn parameters into likelihoods (training)
and into bytes (coding) through an entropy-coder backend (``coders.py``).
Networks never touch the coder directly."""

from .base import LatentEntropyModel
from .coders import CdfTables, CorruptStreamError, IndexedCoder, LegacyRans, SafeAns, StreamDecoder
from .gaussian_hyperprior import GaussianHyperprior

__all__ = [
    "CdfTables",
    "CorruptStreamError",
    "GaussianHyperprior",
    "IndexedCoder",
    "LatentEntropyModel",
    "LegacyRans",
    "SafeAns",
    "StreamDecoder",
]
