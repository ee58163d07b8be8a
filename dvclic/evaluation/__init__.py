"""Evaluation: rate-distortion of dvclic and x264/x265 on raw sequences, and of image codecs on pictures.

Manifests, dvclic and anchor points, BD-rate, RD plots and results files (see ``runner.evaluate``
and DESIGN.md, "Evaluation protocol"); ``images``: an intra codec on a folder of pictures.

Submodules import torch / PyAV / matplotlib; importing this package itself is cheap.
"""
