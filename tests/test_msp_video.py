"""The ``msp`` codec inside the video model: the profile is a coding parameter written in the
stream, the decoder follows it, and a corrupted profile byte is a BitstreamError with its offset."""

from __future__ import annotations

import io

import pytest
import torch

from dvclic.api import encode_file
from dvclic.bitstream import BitstreamReader
from dvclic.checkpoint import save_weights
from dvclic.coding import decode
from dvclic.config import model_config_from_dict
from dvclic.errors import BitstreamError
from dvclic.fuzz import fix_crcs
from dvclic.model import build_model
from dvclic.params import CodingParams, ParameterError
from dvclic.store import ModelStore
from dvclic.video import Y4MPipeWriter

from .conftest import REPO

SAMPLE = REPO / "dvclic" / "samples" / "CiscoVT2people_320x192_12.mp4"


@pytest.fixture(scope="module")
def msp_weights(tmp_path_factory):
    cfg = model_config_from_dict({
        "name": "test-msp", "num_qualities": 2, "lambdas": [256, 1024], "intra_period": 2,
        "intra": {"codec": "msp", "N": 16, "M": 16}, "motion": {"codec": "hyperprior", "N": 16, "M": 16},
        "residual": {"codec": "msp", "N": 16, "M": 16, "profile": 2}, "estimator": {"name": "dis"},
        "motion_compensation": {"channels": 8},
    })
    torch.manual_seed(3)
    path = tmp_path_factory.mktemp("msp") / "test-msp.pt"
    save_weights(build_model(cfg), cfg, path)
    return path


def _encode(tmp_path, weights, **params) -> bytes:
    out = tmp_path / "a.dvc"
    encode_file(SAMPLE, out, params=CodingParams(frames=2, **params), weights=str(weights), device="cpu")
    return out.read_bytes()


def _decode(data: bytes, weights) -> bytes:
    sink = io.BytesIO()
    report = decode(ModelStore(), io.BytesIO(data), lambda info: Y4MPipeWriter(sink, info), weights=str(weights))
    assert report.summary()["exact"] is True
    return sink.getvalue()


def test_the_profile_is_written_and_followed(tmp_path, msp_weights, one_torch_thread):
    for profile in (1, 4):
        data = _encode(tmp_path, msp_weights, profile=profile)
        units = list(BitstreamReader(io.BytesIO(data)))
        assert units[0].sections[0] == bytes([profile])  # the I-frame's profile byte
        assert units[1].sections[-3] == bytes([profile])  # the residual's (streams: profile, z, y)
        _decode(data, msp_weights)
    default = list(BitstreamReader(io.BytesIO(_encode(tmp_path, msp_weights))))
    assert default[0].sections[0] == b"\x04" and default[1].sections[-3] == b"\x02"  # each codec's default


def test_a_profile_the_model_does_not_offer_is_refused(tmp_path, msp_weights, tiny_weights):
    with pytest.raises(ParameterError, match="must be one of"):
        _encode(tmp_path, msp_weights, profile=3)
    with pytest.raises(ParameterError, match="no codec with entropy-model profiles"):
        _encode(tmp_path, tiny_weights, profile=2)


def test_a_corrupted_profile_byte_names_its_offset(tmp_path, msp_weights, one_torch_thread):
    data = _encode(tmp_path, msp_weights, profile=2)
    unit = next(iter(BitstreamReader(io.BytesIO(data))))
    at = unit.section_offsets[0]
    assert data[at] == 2
    bad = bytearray(data)
    bad[at] = 9
    with pytest.raises(BitstreamError, match=f"frame 0: invalid field at byte offset {at} .*profile"):
        _decode(fix_crcs(bytes(bad)), msp_weights)
