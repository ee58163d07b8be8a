"""Entropy models for latents: they turn parameters into likelihoods (training)
and into real rANS bytes (coding). Networks never touch the coder directly."""

from .base import LatentEntropyModel
from .gaussian_hyperprior import GaussianHyperprior

__all__ = ["LatentEntropyModel", "GaussianHyperprior"]
