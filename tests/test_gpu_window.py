"""The lent-GPU recipe, run on CPU with a tiny model: packed data, the time limit, the one script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from dvclic.config import load_model_config
from dvclic.errors import InputError
from dvclic.store import ModelStore
from dvclic.train.config import DataSpec, load_train_config, train_config_from_dict
from dvclic.train.data import Augment, ImageFolder
from dvclic.train.engine import Trainer
from dvclic.train.pack import pack_pictures

from .conftest import REPO


def _pictures(folder: Path) -> Path:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    for i, (w, h) in enumerate([(300, 200), (96, 80), (640, 400), (200, 260), (130, 130)]):
        base = rng.integers(0, 256, (h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8)
        smooth = np.kron(base, np.ones((8, 8, 1), dtype=np.uint8))[:h, :w]  # compressible, not noise
        Image.fromarray(smooth).save(folder / f"p{i}.png")
    return folder


@pytest.fixture()
def pack(tmp_path) -> Path:
    src = _pictures(tmp_path / "src")
    dest = tmp_path / "pack"
    res = pack_pictures([DataSpec(kind="images", params={"root": str(src)})], dest, max_bytes=10**7,
                        patch=128, min_side=64, shrink=2.0)
    assert res["patches"] == res["candidates"] == 5
    return dest


def test_pack_cuts_patches_under_the_budget_and_records_them(tmp_path):
    src = _pictures(tmp_path / "src")
    spec = DataSpec(kind="images", params={"root": str(src)})
    res = pack_pictures([spec], tmp_path / "pack", max_bytes=10**7, patch=128, min_side=100, shrink=2.0)
    manifest = json.loads((tmp_path / "pack" / "pack.json").read_text())
    assert res["patches"] == 4 and res["candidates"] == 5  # 96x80 is under min_side
    sizes = {tuple(e["box"][2:]) for e in manifest["entries"]}
    assert all(max(s) <= 128 and min(s) >= 100 for s in sizes)
    for e in manifest["entries"]:
        with Image.open(tmp_path / "pack" / e["file"]) as im:
            assert im.size == tuple(e["box"][2:])
        assert 1.0 <= e["shrink"] <= 2.0
    assert len(ImageFolder(tmp_path / "pack", augment=Augment(crop=64))) == 4
    # the same settings give the same pack; a budget cuts it short
    again = pack_pictures([spec], tmp_path / "again", max_bytes=10**7, patch=128, min_side=100, shrink=2.0)
    assert again["bytes"] == res["bytes"]
    small = pack_pictures([spec], tmp_path / "small", max_bytes=res["bytes"] // 2, patch=128, min_side=100)
    assert small["patches"] < 4 and small["bytes"] <= res["bytes"] // 2
    with pytest.raises(InputError, match="not an empty folder"):
        pack_pictures([spec], tmp_path / "pack", max_bytes=10**7)
    with pytest.raises(InputError, match="cannot be packed|no packable"):
        pack_pictures([DataSpec(kind="video", params={"path": "x.mp4"})], tmp_path / "v", max_bytes=10**7)
    assert not (tmp_path / "v").exists()


def _tiny_train(model_yaml: Path, data: Path, **over) -> dict:
    raw = {"model": str(model_yaml), "seed": 0, "batch_size": 2, "crop": 64, "workers": 0, "amp": True,
           "log_every": 1, "ckpt_every": 100, "data": [{"kind": "images", "root": str(data)}],
           "stages": [{"name": "a", "task": "intra", "steps": 3, "lr": 1e-4, "trainable": ["intra"]},
                      {"name": "b", "task": "intra", "steps": 2, "lr": 3e-5, "trainable": ["intra"]}]}
    return {**raw, **over}


@pytest.fixture()
def tiny_model_yaml(tmp_path, tiny_model_config) -> Path:
    p = tmp_path / "tiny.yaml"
    p.write_text(yaml.safe_dump(tiny_model_config.to_dict()))
    return p


def test_time_limit_stops_with_a_checkpoint_and_resume_goes_on(tmp_path, tiny_model_yaml, pack):
    cfg = train_config_from_dict(_tiny_train(tiny_model_yaml, pack, time_limit_s=1e-6))
    trainer = Trainer(cfg, tmp_path / "run", device="cpu")
    weights = trainer.run()
    assert trainer.stopped_early and weights is not None and weights.is_file()
    ck = torch.load(tmp_path / "run" / "last.pt", weights_only=False)
    assert (ck["stage"], ck["step"], ck["global_step"]) == (0, 1, 1)  # the first step always runs
    go_on = Trainer(train_config_from_dict(_tiny_train(tiny_model_yaml, pack)), tmp_path / "run", device="cpu")
    go_on.run(resume=True)
    assert not go_on.stopped_early and go_on.global_step == 5


@pytest.mark.parametrize("bad", [-1, "soon", float("nan"), float("inf")])
def test_time_limit_must_be_a_finite_number_of_seconds(tiny_model_yaml, pack, bad):
    from dvclic.config import ConfigError

    with pytest.raises(ConfigError, match="time_limit_s"):
        train_config_from_dict(_tiny_train(tiny_model_yaml, pack, time_limit_s=bad))


def test_gpu_window_config_is_the_default_model_in_bf16():
    cfg = load_train_config(REPO / "configs" / "train" / "gpu-window.yaml")
    assert cfg.amp and cfg.crop == 256 and cfg.batch_size >= 32 and 0 < cfg.time_limit_s <= 480
    from dvclic.store import DEFAULT_WEIGHTS, ModelStore

    assert load_model_config(REPO / cfg.model).name == ModelStore().load(DEFAULT_WEIGHTS).config.name
    assert [d.kind for d in cfg.data] == ["images"] and dict(cfg.data[0].params)["root"] == ".gpu/pack"


@pytest.mark.slow
def test_the_script_trains_and_exports_on_cpu(tmp_path, tiny_model_yaml, tiny_weights, pack):
    """``tools/gpu_window.sh train`` end to end, on CPU with the tiny model (about 30 s)."""
    config = tmp_path / "window.yaml"
    config.write_text(yaml.safe_dump(_tiny_train(tiny_model_yaml, pack, time_limit_s=600)))
    out = tmp_path / "out"
    (tmp_path / "no-wheels").mkdir()
    env = {**os.environ, "PYTHON": sys.executable, "DVCLIC_DEVICE": "cpu", "DVCLIC_WHEELS": str(tmp_path / "no-wheels")}
    run = subprocess.run(["bash", str(REPO / "tools" / "gpu_window.sh"), "train", str(out), str(config),
                          str(tiny_weights)], capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    log = (out / "train.log").read_text()
    assert "stage a: 3 steps" in log and "stage b: 2 steps" in log
    assert json.loads((out / "export.json").read_text())["storage"] == "int8"
    assert (out / "train.tfevents").is_file()
    loaded = ModelStore().load(out / "weights.pt")
    assert loaded.provenance["steps"] == 5 and loaded.config.name == "test-tiny"
    assert sorted(p.name for p in out.iterdir()) == ["export.json", "train.log", "train.tfevents", "weights.pt"]
