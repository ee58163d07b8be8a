"""Every file in configs/ loads; every model config builds and codes two frames exactly."""

from __future__ import annotations

import pytest
import torch

from dvclic.config import ConfigError, load_model_config, model_config_from_dict
from dvclic.model import build_model
from dvclic.sequence import SequenceDecoder, SequenceEncoder
from dvclic.train.config import load_train_config

from .conftest import REPO

MODEL_CONFIGS = sorted((REPO / "configs" / "models").rglob("*.yaml"))
TRAIN_CONFIGS = sorted((REPO / "configs" / "train").glob("*.yaml"))


def test_config_folders_are_not_empty():
    assert MODEL_CONFIGS and TRAIN_CONFIGS


@pytest.mark.parametrize("path", MODEL_CONFIGS, ids=[p.stem for p in MODEL_CONFIGS])
def test_model_config_builds_and_codes_two_frames(path):
    cfg = load_model_config(path)
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    model.update(force=True)
    m = model.size_multiple
    x = torch.rand(2, 1, 3, m, m)
    enc = SequenceEncoder(model, quality=0, intra_period=-1)
    dec = SequenceDecoder(model, padded_size=(m, m))
    for t in range(2):
        coded = enc.encode(x[t])
        assert torch.equal(dec.decode(coded.unit).x_hat, coded.x_hat)


@pytest.mark.parametrize("path", TRAIN_CONFIGS, ids=[p.stem for p in TRAIN_CONFIGS])
def test_train_config_loads_and_names_a_model(path):
    cfg = load_train_config(path)
    load_model_config(REPO / cfg.model if not (REPO / cfg.model).is_absolute() else cfg.model)


def test_unknown_keys_and_names_are_errors(tiny_model_config):
    raw = tiny_model_config.to_dict()
    with pytest.raises(ConfigError, match="unknown keys"):
        model_config_from_dict({**raw, "colour": "red"})
    with pytest.raises(ConfigError, match="valid names"):
        build_model(model_config_from_dict({**raw, "residual": {"codec": "nope"}}))
    with pytest.raises(ConfigError, match="estimator"):
        build_model(model_config_from_dict({**raw, "estimator": {"name": "raft"}}))
    with pytest.raises(ConfigError, match="bad arguments"):
        build_model(model_config_from_dict({**raw, "intra": {"codec": "hyperprior", "K": 3}}))
    with pytest.raises(ConfigError, match="lambdas"):
        model_config_from_dict({**raw, "lambdas": [1.0]})


def test_config_round_trips_through_dict(tiny_model_config):
    assert model_config_from_dict(tiny_model_config.to_dict()) == tiny_model_config


def test_intra_offset_is_a_model_default_for_encoding(tiny_model_config, tiny_weights, tmp_path):
    """``intra_offset`` in a model config: written only when set, checked, and the encoder's default."""
    from dataclasses import replace

    from dvclic.params import CodingParams

    raw = tiny_model_config.to_dict()
    assert "intra_offset" not in raw  # configs of earlier files read the same
    cfg = model_config_from_dict({**raw, "intra_offset": 1})
    assert cfg.intra_offset == 1 and model_config_from_dict(cfg.to_dict()) == cfg
    for bad in (-1, 1.5, True, "1"):
        with pytest.raises(ConfigError, match="intra_offset"):
            model_config_from_dict({**raw, "intra_offset": bad})
    assert CodingParams().for_model(2, 12, 1).intra_offset == 1
    assert CodingParams(intra_offset=0).for_model(2, 12, 1).intra_offset == 0
    assert replace(CodingParams(), quality=1).for_model(2, 12).intra_offset == 0


def test_encode_file_takes_the_intra_offset_from_the_weights_config(tmp_path, tiny_model_config):
    """A weights file whose config says ``intra_offset: 1`` codes its GOP I-frames one quality up
    unless the caller says otherwise; the decode is exact either way."""
    import io

    import torch

    from dvclic.api import encode_file
    from dvclic.bitstream import BitstreamReader
    from dvclic.checkpoint import save_weights
    from dvclic.coding import decode
    from dvclic.params import CodingParams
    from dvclic.store import ModelStore
    from dvclic.video import Y4MPipeWriter

    cfg = model_config_from_dict({**tiny_model_config.to_dict(), "intra_offset": 1, "estimator": {"name": "dis"}})
    torch.manual_seed(4)
    weights = tmp_path / "offset.pt"
    save_weights(build_model(cfg), cfg, weights)
    sample = REPO / "dvclic" / "samples" / "CiscoVT2people_320x192_12.mp4"
    for given, want in ((None, [1, 0, 1]), (0, [0, 0, 0])):
        out = tmp_path / f"{given}.dvc"
        params = CodingParams(frames=3, quality=0, intra_offset=given, modes="mc,warp,zero,skip")
        encode_file(sample, out, params=params, weights=str(weights), device="cpu")
        data = out.read_bytes()
        assert [u.quality for u in BitstreamReader(io.BytesIO(data))] == want
        report = decode(ModelStore(), io.BytesIO(data), lambda info: Y4MPipeWriter(io.BytesIO(), info),
                        weights=str(weights))
        assert report.summary()["exact"] is True


def test_refine_precision_is_a_checked_coding_parameter():
    from dvclic.params import CodingParams, ParameterError

    assert CodingParams().refine_precision == "float32"
    assert CodingParams(refine_precision="bfloat16").refine_precision == "bfloat16"
    with pytest.raises(ParameterError, match="refine_precision: must be one of float32, bfloat16"):
        CodingParams(refine_precision="float16")
