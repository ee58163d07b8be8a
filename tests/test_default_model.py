"""The shipped default model: loads offline, codes the bundled sample exactly, behaves like a codec."""

from __future__ import annotations

import json

import pytest
import torch

from dvclic.api import DEFAULT_WEIGHTS
from dvclic.checkpoint import load_weights, package_weights_dir
from dvclic.cli import decode_main, encode_main
from dvclic.sequence import SequenceEncoder
from dvclic.video import open_video, pad_to_multiple
from dvclic.color import yuv420_to_rgb

from .conftest import REPO

SAMPLE = REPO / "dvclic" / "samples" / "CiscoVT2people_320x192_12.mp4"


@pytest.fixture(scope="module")
def default():
    return load_weights(DEFAULT_WEIGHTS)


@pytest.fixture(scope="module")
def sample_frame():
    with open_video(SAMPLE, max_frames=1) as src:
        return yuv420_to_rgb(next(iter(src)))


def test_shipped_weights_are_compact_and_self_describing(default):
    path = package_weights_dir() / DEFAULT_WEIGHTS
    assert path.stat().st_size < 10 * 2**20  # int8 kernels (tools/export_weights.py)
    assert default.config.name == "dvc-dis-8q"
    assert default.provenance.get("steps", 0) > 0  # made by tools/train.py
    assert default.provenance.get("storage") == "int8"


def test_default_model_config_names_the_default_weights_with_integer_entropy_parameters(default):
    from dvclic.store import ModelStore

    loaded = ModelStore().for_config(REPO / "configs" / "models" / "dvc-dis-8q.yaml")  # config and file agree
    assert loaded.path.name == DEFAULT_WEIGHTS
    codecs = (default.model.intra, default.model.pframe.motion_codec, default.model.pframe.residual_codec)
    assert [c.entropy.parameters for c in codecs] == ["integer"] * 3  # the same symbols on every machine


def test_sample_round_trip_with_default_weights(tmp_path, capsys):
    dvc, rec, out = tmp_path / "s.dvc", tmp_path / "rec.y4m", tmp_path / "out.y4m"
    assert encode_main([str(SAMPLE), "-o", str(dvc), "--frames", "4", "--intra-period", "3", "--recon", str(rec),
                        "--device", "cpu", "--json"]) == 0
    enc = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert decode_main([str(dvc), "-o", str(out), "--device", "cpu"]) == 0  # weights found by hash
    assert out.read_bytes() == rec.read_bytes()
    assert enc["frame_types"][0] == "I" and enc["frame_types"][3] == "I" and enc["bits"]["residual"] > 0
    assert enc["psnr_rgb"] > 20.0  # the shipped weights give 23-24 dB on this clip; random weights ~6 dB


def test_higher_quality_costs_more_and_looks_better(default, sample_frame):
    model = default.model
    x = pad_to_multiple(sample_frame, model.size_multiple)
    results = []
    for q in (0, model.num_qualities - 1):
        coded = SequenceEncoder(model, quality=q, intra_period=1).encode(x)
        results.append((coded.unit.num_bytes, -torch.mean((coded.x_hat - x) ** 2).item()))
    assert results[1][0] > results[0][0] and results[1][1] > results[0][1]


def test_p_frames_cost_fewer_bits_than_i_frames_on_static_clip(default, sample_frame):
    model = default.model
    x = pad_to_multiple(sample_frame, model.size_multiple)
    enc = SequenceEncoder(model, quality=1, intra_period=-1)
    coded = [enc.encode(x) for _ in range(6)]
    sizes = [c.unit.num_bytes for c in coded]
    mse = [torch.mean((c.x_hat - x) ** 2).item() for c in coded]
    # the first P-frames may spend bits refining the I-frame (when that lowers R + lambda D); then
    # nothing is left to code, and P-frames (zero motion, every block skipped) cost under 5% of it
    assert all(n < sizes[0] / 2 for n in sizes[1:]) and mse[-1] < mse[0]
    assert sizes[-2] < sizes[0] * 0.05 and sizes[-1] < sizes[0] * 0.05
