"""Shared fixtures. Tests run on CPU, offline; data from ../shared/data is used
when present and the tests that need it are skipped otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def shared_file(rel: str) -> Path:
    p = SHARED_DATA / rel
    if not p.exists():
        pytest.skip(f"shared data not available: {p}")
    return p


@pytest.fixture(autouse=True)
def _deterministic_cpu():
    torch.manual_seed(0)
    yield


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny tensors: on a 2-core machine extra intra-op threads only add contention."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def tiny_model_config():
    """A small but complete model config (every part real, widths shrunk)."""
    from dvclic.config import model_config_from_dict

    return model_config_from_dict({
        "name": "test-tiny",
        "num_qualities": 2,
        "lambdas": [256, 1024],
        "intra_period": 2,
        "intra": {"codec": "hyperprior", "N": 16, "M": 24},
        "motion": {"codec": "hyperprior", "N": 16, "M": 16},
        "residual": {"codec": "hyperprior", "N": 16, "M": 24},
        "estimator": {"name": "spynet", "levels": 4},
        "motion_compensation": {"channels": 8},
    })


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory, tiny_model_config):
    """A weights file for the tiny config (random init, real entropy tables)."""
    from dvclic.checkpoint import save_weights
    from dvclic.model import build_model

    torch.manual_seed(1)
    model = build_model(tiny_model_config)
    path = tmp_path_factory.mktemp("weights") / "test-tiny.pt"
    save_weights(model, tiny_model_config, path, provenance={"note": "random init, tests only"})
    return path
