"""The model store: one place resolves a weights reference and loads each file once."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from dvclic import store as store_module
from dvclic.bitstream import SequenceHeader
from dvclic.checkpoint import file_sha256, save_weights
from dvclic.color import YUVFrame
from dvclic.errors import WeightsError
from dvclic.evaluation.plan import EvalOptions
from dvclic.evaluation.runner import evaluate
from dvclic.model import build_model
from dvclic.store import ModelStore
from dvclic.video import open_video
from dvclic.video.raw_yuv import frame_to_bytes

from .conftest import shared_file


@pytest.fixture
def folder(tmp_path, tiny_weights) -> Path:
    d = tmp_path / "weights"
    d.mkdir()
    shutil.copyfile(tiny_weights, d / "tiny.pt")
    return d


def test_references_resolve_to_one_cached_load(folder, tiny_weights):
    store = ModelStore(search=[folder])
    sha = file_sha256(tiny_weights).hex()
    first = store.load("tiny.pt")
    assert store.load(folder / "tiny.pt") is first and store.load(sha) is first and store.load(sha[:12]) is first
    assert store.loads == 1 and first.kind == "weights" and first.sha256.hex() == sha
    with pytest.raises(WeightsError, match="not found"):
        store.load("missing.pt")
    with pytest.raises(WeightsError, match="no weights file with SHA-256"):
        store.load("0" * 64)


def test_checkpoints_only_when_asked(tmp_path, tiny_model_config):
    model = build_model(tiny_model_config)
    ck = tmp_path / "last.pt"
    torch.save({"model": model.state_dict(), "model_config": tiny_model_config.to_dict(), "stage": 1, "step": 5}, ck)
    with pytest.raises(WeightsError, match="not a dvclic weights file"):
        ModelStore().load(ck)
    loaded = ModelStore().load(ck, checkpoints=True)
    assert loaded.kind == "training checkpoint (stage 1, step 5)" and loaded.model.intra.entropy.tables_built()


def test_stream_and_config_checks(folder, tiny_weights, tiny_model_config, tmp_path):
    store = ModelStore(search=[folder])
    sha = file_sha256(tiny_weights)
    header = SequenceHeader(width=64, height=64, frame_count=1, fps=25, bit_depth=8, intra_period=2, quality=0,
                            model="test-tiny", weights_sha256=sha)
    assert store.for_stream(header).sha256 == sha and store.loads == 1
    with pytest.raises(WeightsError, match="no weights .* match this stream"):
        ModelStore(search=[tmp_path]).for_stream(header)
    with pytest.raises(WeightsError, match="needs 'other'"):
        store.for_stream(SequenceHeader(**{**header.__dict__, "model": "other"}))
    other = tmp_path / "other.pt"
    torch.manual_seed(5)
    save_weights(build_model(tiny_model_config), tiny_model_config, other)
    with pytest.raises(WeightsError, match="do not match the stream"):
        store.for_stream(header, other)
    config = tmp_path / "c.yaml"
    config.write_text("name: test-tiny\nintra: {codec: hyperprior}\nmotion: {codec: hyperprior}\n"
                      "residual: {codec: hyperprior}\nestimator: {name: dis}\n")
    with pytest.raises(WeightsError, match="were trained for config"):
        store.for_config(config, tiny_weights)


def test_random_weights_are_explicit_and_seeded(tmp_path, tiny_model_config):
    config = tmp_path / "c.yaml"
    import yaml

    config.write_text(yaml.safe_dump(tiny_model_config.to_dict()))
    a, b = ModelStore().random(config), ModelStore().random(config)
    assert a.kind == "random init" and a.sha256 == b""
    assert all(torch.equal(x, y) for x, y in zip(a.model.parameters(), b.model.parameters()))


@pytest.fixture
def two_sequences(tmp_path) -> Path:
    src = shared_file("video/CiscoVT2people_320x192_12.yuv")
    root = tmp_path / "clips"
    root.mkdir()
    with open(root / "c_128x64_12.yuv", "wb") as out, open_video(src, max_frames=2) as frames:
        for f in frames:
            out.write(frame_to_bytes(YUVFrame(f.y[:64, :128].copy(), f.u[:32, :64].copy(), f.v[:32, :64].copy())))
    seq = "  - {{name: {n}, class: test, file: c_128x64_12.yuv, width: 128, height: 64, fps: 12, frames: 2, bit_depth: 8}}\n"
    (root / "m.yaml").write_text("name: two\nsequences:\n" + seq.format(n="one") + seq.format(n="two"))
    return root


def test_an_evaluation_of_four_points_reads_the_weights_once(two_sequences, tmp_path, tiny_weights, monkeypatch):
    reads = []
    real = store_module.load_weights

    def counting(path, **kwargs):
        reads.append(Path(path).name)
        return real(path, **kwargs)

    monkeypatch.setattr(store_module, "load_weights", counting)
    options = EvalOptions(dataset=str(two_sequences / "m.yaml"), root=str(two_sequences), out=str(tmp_path / "out"),
                          weights=str(tiny_weights), intra_period=2, qualities=(0, 1), anchors=(), device="cpu",
                          threads=1, command=("dvclic", "eval", "--test"))
    outcome = evaluate(options)
    points = [p for seq in outcome.results["sequences"].values() for p in seq["test-tiny"]]
    assert len(points) == 4 and reads == [tiny_weights.name]
