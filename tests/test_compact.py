"""Compact weight storage (dvclic/compact.py) and tools/export_weights.py."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from dvclic.checkpoint import FORMAT, load_weights, save_weights
from dvclic.store import export_weights
from dvclic.compact import pack_state, round_model_, unpack_state
from dvclic.errors import WeightsError
from dvclic.model import build_model
from dvclic.sequence import SequenceDecoder, SequenceEncoder

from .conftest import REPO


def _model(cfg, seed=3):
    torch.manual_seed(seed)
    return build_model(cfg)


@pytest.mark.parametrize("storage", ["fp32", "fp16", "int8"])
def test_loaded_state_equals_the_rounded_model_exactly(tmp_path, tiny_model_config, storage):
    model = _model(tiny_model_config)
    save_weights(model, tiny_model_config, tmp_path / "w.pt", storage=storage)  # rounds `model` in place
    loaded = load_weights(tmp_path / "w.pt").model
    saved, back = model.state_dict(), loaded.state_dict()
    assert saved.keys() == back.keys()
    for k in saved:
        assert saved[k].dtype == back[k].dtype and torch.equal(saved[k], back[k]), k
    # the stored tables are the ones the loaded weights give: rounding happened before update()
    tables = {k: v.clone() for k, v in back.items() if "cdf" in k or k.endswith("_offset")}
    loaded.update(force=True)
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in tables.items())


def test_int8_is_smaller_and_close_to_fp32(tmp_path, tiny_model_config):
    sizes = {}
    for storage in ("fp32", "fp16", "int8"):
        save_weights(_model(tiny_model_config), tiny_model_config, tmp_path / f"{storage}.pt", storage=storage)
        sizes[storage] = (tmp_path / f"{storage}.pt").stat().st_size
    assert sizes["int8"] < 0.7 * sizes["fp16"] and sizes["fp16"] < 0.7 * sizes["fp32"]
    ref = _model(tiny_model_config)
    int8 = _model(tiny_model_config)
    round_model_(int8, "int8")
    for (name, a), b in zip(ref.named_parameters(), int8.parameters()):
        if a.dim() == 4:  # per-slice int8: error at most half a step of that slice's scale
            step = a.detach().abs().flatten(1).amax(1) / 127
            assert ((a - b).abs().flatten(1).amax(1) <= step / 2 + 1e-7).all(), name
        else:
            assert torch.equal(b, a.detach().half().float()), name


def test_int8_weights_code_exactly(tmp_path, tiny_model_config):
    save_weights(_model(tiny_model_config), tiny_model_config, tmp_path / "w.pt", storage="int8")
    enc_model, dec_model = load_weights(tmp_path / "w.pt").model, load_weights(tmp_path / "w.pt").model
    torch.manual_seed(0)
    frames = torch.rand(3, 3, 64, 64)
    enc = SequenceEncoder(enc_model, quality=1, intra_period=2)
    dec = SequenceDecoder(dec_model, padded_size=(64, 64))
    for f in frames:
        coded = enc.encode(f[None])
        assert torch.equal(dec.decode(coded.unit).x_hat, coded.x_hat)


def test_cdf_rows_keep_only_their_lengths():
    state = {"m._quantized_cdf": torch.tensor([[0, 5, 65536, 0, 0], [0, 1, 2, 3, 65536]], dtype=torch.int32),
             "m._cdf_length": torch.tensor([3, 5], dtype=torch.int32), "w": torch.ones(2, 2)}
    packed = pack_state(state, "fp16")
    assert packed["cdf"]["m._quantized_cdf"]["values"].numel() == 8
    back = unpack_state(packed)
    assert torch.equal(back["m._quantized_cdf"], state["m._quantized_cdf"]) and torch.equal(back["w"], state["w"])
    packed["cdf"]["m._quantized_cdf"]["values"] = packed["cdf"]["m._quantized_cdf"]["values"][:-1]
    with pytest.raises(ValueError, match="lengths"):
        unpack_state(packed)


def test_version_1_files_still_load_and_damage_is_reported(tmp_path, tiny_model_config):
    model = _model(tiny_model_config)
    round_model_(model, "fp16")
    model.update(force=True)
    state = {k: (v.half() if v.is_floating_point() else v) for k, v in model.state_dict().items()}
    torch.save({"format": FORMAT, "version": 1, "config": tiny_model_config.to_dict(), "state_dict": state},
               tmp_path / "v1.pt")
    loaded = load_weights(tmp_path / "v1.pt").model
    assert all(torch.equal(v.float() if v.is_floating_point() else v, loaded.state_dict()[k])
               for k, v in state.items())
    torch.save({"format": FORMAT, "version": 2, "config": tiny_model_config.to_dict(), "packed": {"tensors": {}}},
               tmp_path / "bad.pt")
    with pytest.raises(WeightsError, match="damaged"):
        load_weights(tmp_path / "bad.pt")


def test_export_from_checkpoint_and_cli(tmp_path, tiny_model_config, tiny_weights):
    model = _model(tiny_model_config)
    ck = tmp_path / "last.pt"
    torch.save({"model": model.state_dict(), "model_config": tiny_model_config.to_dict(), "stage": 2, "step": 5,
                "global_step": 123, "train_config": {"seed": 0}}, ck)
    res = export_weights(ck, tmp_path / "out.pt", storage="int8")
    w = load_weights(tmp_path / "out.pt")
    assert res["bytes"] == (tmp_path / "out.pt").stat().st_size and bytes.fromhex(res["sha256"]) == w.sha256
    assert w.provenance["steps"] == 123 and w.provenance["storage"] == "int8"
    with pytest.raises(WeightsError, match="overwrite"):
        export_weights(tiny_weights, tiny_weights)
    tool = [sys.executable, str(REPO / "tools" / "export_weights.py")]
    run = subprocess.run([*tool, str(tiny_weights), "-o", str(tmp_path / "t.pt"), "--storage", "int8", "--json"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and json.loads(run.stdout)["storage"] == "int8"
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"nope")
    run = subprocess.run([*tool, str(junk), "-o", str(tmp_path / "j.pt")], capture_output=True, text=True, timeout=300)
    assert run.returncode == 2 and run.stderr.startswith("error: ") and "Traceback" not in run.stderr
    assert not (tmp_path / "j.pt").exists()
