"""tools/inspect_motion.py: per-pair motion statistics with real bytes, from weights or a checkpoint."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch

from dvclic.color import yuv420_to_rgb
from dvclic.errors import InputError, WeightsError
from dvclic.model import build_model
from dvclic.motion_inspect import FIELDS, inspect_motion
from dvclic.store import ModelStore
from dvclic.video import open_video

from .conftest import REPO, shared_file

CISCO = "video/CiscoVT2people_320x192_12.yuv"


def test_pairs_and_means_on_real_frames(tiny_weights, one_torch_thread):
    loaded = ModelStore().load(tiny_weights, checkpoints=True)
    model, kind = loaded.model, loaded.kind
    assert kind == "weights"
    res = inspect_motion(model, str(shared_file(CISCO)), frames=3, quality=1)
    assert (res["width"], res["height"], len(res["pairs"])) == (320, 192, 2)
    with open_video(str(shared_file(CISCO)), max_frames=2) as src:
        f0, f1 = (yuv420_to_rgb(f) for f in src)
    assert res["pairs"][0]["mse_ref"] == pytest.approx(torch.mean((f0 - f1) ** 2).item(), rel=1e-6)
    for p in res["pairs"]:
        assert p["residual_bytes"] > 0 and p["flow_std"] >= 0 and p["mode"] in ("intra", "mc", "warp", "zero",
                                                                                 "mc+skip", "warp+skip", "zero+skip")
        assert p["psnr_copy"] == pytest.approx(10 * math.log10(1 / p["mse_ref"]))
        assert (p["motion_bytes"] == 0) == (p["mode"].startswith(("zero", "intra")))
    assert sum(res["modes"].values()) == 2
    for k in FIELDS:
        assert res["mean"][k] == pytest.approx(sum(p[k] for p in res["pairs"]) / 2)
    with pytest.raises(InputError, match="frames"):
        inspect_motion(model, str(shared_file(CISCO)), frames=1)


def test_training_checkpoint_and_bad_files(tmp_path, tiny_model_config):
    torch.manual_seed(0)
    model = build_model(tiny_model_config)
    ck = tmp_path / "last.pt"
    torch.save({"model": model.state_dict(), "model_config": tiny_model_config.to_dict(), "stage": 3, "step": 7}, ck)
    read = ModelStore().load(ck, checkpoints=True)
    loaded, kind, provenance = read.model, read.kind, read.provenance
    assert kind == "training checkpoint (stage 3, step 7)" and provenance == {"train_config": None, "steps": None}
    assert all(torch.equal(a, b) for a, b in zip(loaded.parameters(), model.parameters()))  # (tables rebuilt)
    assert loaded.intra.entropy.tables_built() and loaded.pframe.motion_codec.entropy.tables_built()
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError):
        ModelStore().load(junk, checkpoints=True)
    with pytest.raises(WeightsError):  # a checkpoint is not a weights file unless asked for
        ModelStore().load(ck)


def test_cli_exit_2_on_missing_input(tiny_weights, tmp_path):
    run = subprocess.run([sys.executable, str(REPO / "tools" / "inspect_motion.py"), str(tmp_path / "none.mp4"),
                          "--weights", str(tiny_weights)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 2 and "Traceback" not in run.stderr and run.stderr.startswith("error: ")
