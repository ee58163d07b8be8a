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
