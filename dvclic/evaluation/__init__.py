"""Evaluation on UVG / HEVC-style raw sequences: manifests, dvclic and x264/x265 anchor points,
BD-rate, RD plots and results files (see ``runner.evaluate`` and DESIGN.md, "Evaluation protocol").

Submodules import torch / PyAV / matplotlib; importing this package itself is cheap.
"""
