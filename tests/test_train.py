"""Training engine: datasets, every shipped training config, resume, DDP."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import yaml

from dvclic.errors import InputError
from dvclic.train.config import load_train_config, train_config_from_dict
from dvclic.train.data import Augment, VimeoSeptuplets
from dvclic.train.engine import Trainer

from .conftest import REPO, shared_file

TRAIN_CONFIGS = sorted((REPO / "configs" / "train").glob("*.yaml"))


def test_vimeo_reads_sample_layout():
    root = shared_file("vimeo_septuplet")
    ds = VimeoSeptuplets(root, split="train", frames=3, augment=Augment(crop=64))
    assert len(ds) == len((root / "sep_trainlist.txt").read_text().split())
    clip = ds[0]
    assert clip.shape == (3, 3, 64, 64) and 0 <= clip.min() and clip.max() <= 1
    assert torch.equal(ds[0], clip)  # deterministic per (seed, epoch, index)
    ds.set_epoch(1)
    assert not torch.equal(ds[0], clip)
    test = VimeoSeptuplets(root, split="test", frames=7, augment=Augment(crop=32))
    assert test[0].shape == (7, 3, 32, 32)


def test_vimeo_missing_files_are_named(tmp_path):
    (tmp_path / "sep_trainlist.txt").write_text("00001/0001\n")
    with pytest.raises(InputError, match="00001/0001"):
        VimeoSeptuplets(tmp_path, frames=2, augment=Augment(crop=32))
    (tmp_path / "sequences" / "00001" / "0001").mkdir(parents=True)
    ds = VimeoSeptuplets(tmp_path, frames=2, augment=Augment(crop=32))
    with pytest.raises(InputError, match="im"):
        ds[0]


def tiny_train_dict(model_cfg_path: Path, steps: int = 2) -> dict:
    vimeo = str(shared_file("vimeo_septuplet"))
    return {
        "model": str(model_cfg_path), "seed": 3, "batch_size": 2, "crop": 64, "workers": 0,
        "log_every": 1, "ckpt_every": 1, "val_clips": 1,
        "data": [{"kind": "vimeo", "root": vimeo, "split": "train"}],
        "val": [{"kind": "vimeo", "root": vimeo, "split": "test"}],
        "stages": [
            {"name": "intra", "task": "intra", "steps": steps, "lr": 1e-4, "trainable": ["intra"]},
            {"name": "joint", "task": "pframe", "frames": 3, "steps": steps, "lr": 1e-4,
             "trainable": ["estimator", "motion_codec", "mc_net", "residual_codec"], "loss": {"rd": 1, "rate": 1}},
        ],
    }


@pytest.fixture()
def tiny_model_yaml(tmp_path, tiny_model_config) -> Path:
    p = tmp_path / "tiny.yaml"
    p.write_text(yaml.safe_dump(tiny_model_config.to_dict()))
    return p


@pytest.mark.parametrize("path", TRAIN_CONFIGS, ids=[p.stem for p in TRAIN_CONFIGS])
def test_every_train_config_runs_each_stage_one_step(path, tmp_path, tiny_model_yaml):
    cfg = load_train_config(path)
    small = replace(
        cfg, model=str(tiny_model_yaml), batch_size=2, crop=64, workers=0, val=(),
        data=train_config_from_dict(tiny_train_dict(tiny_model_yaml)).data,
        stages=tuple(replace(s, steps=1) for s in cfg.stages),
    )
    weights = Trainer(small, tmp_path / "run", device="cpu").run()
    assert weights is not None and weights.is_file()


def _params(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=False)["model"]


def test_resume_matches_uninterrupted_run(tmp_path, tiny_model_yaml):
    cfg = train_config_from_dict(tiny_train_dict(tiny_model_yaml, steps=3))
    Trainer(cfg, tmp_path / "full", device="cpu").run()
    # "Kill" after the intra stage's second step: run a config whose schedule stops there,
    # then resume with the full schedule.
    short = replace(cfg, stages=(replace(cfg.stages[0], steps=2),))
    part = Trainer(short, tmp_path / "part", device="cpu")
    part.run()
    ck = torch.load(tmp_path / "part" / "last.pt", weights_only=False)
    ck["stage"], ck["step"] = 0, 2  # the position a kill after step 2 leaves behind
    torch.save(ck, tmp_path / "part" / "last.pt")
    Trainer(cfg, tmp_path / "part", device="cpu").run(resume=True)
    full, resumed = _params(tmp_path / "full" / "last.pt"), _params(tmp_path / "part" / "last.pt")
    for k in full:
        assert torch.equal(full[k], resumed[k]), k


def test_torchrun_two_ranks_keep_identical_parameters(tmp_path, tiny_model_yaml):
    cfg = tiny_train_dict(tiny_model_yaml, steps=2)
    cfg_path = tmp_path / "train.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    script = (
        "import os, sys, torch, torch.distributed as dist\n"
        "from dvclic.train.config import load_train_config\n"
        "from dvclic.train.engine import Trainer\n"
        "t = Trainer(load_train_config(sys.argv[1]), sys.argv[2], device='cpu')\n"
        "t.run()\n"
        "torch.save(t.model.state_dict(), os.path.join(sys.argv[2], f'rank{dist.get_rank()}.pt'))\n"
    )
    (tmp_path / "ddp.py").write_text(script)
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29533",
                           str(tmp_path / "ddp.py"), str(cfg_path), str(tmp_path / "run")],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    a = torch.load(tmp_path / "run" / "rank0.pt")
    b = torch.load(tmp_path / "run" / "rank1.pt")
    assert a.keys() == b.keys()
    for k, v in a.items():
        assert torch.equal(v, b[k]), k


def test_amp_bf16_step_runs_and_keeps_parameters_fp32(tmp_path, tiny_model_yaml):
    raw = tiny_train_dict(tiny_model_yaml, steps=1)
    raw["amp"] = True
    raw["val"] = None
    del raw["val"]
    trainer = Trainer(train_config_from_dict(raw), tmp_path / "amp", device="cpu")
    before = {k: v.clone() for k, v in trainer.model.state_dict().items() if v.is_floating_point()}
    trainer.run()
    after = trainer.model.state_dict()
    assert all(after[k].dtype == torch.float32 for k in before)
    assert any(not torch.equal(before[k], after[k]) for k in before)  # it trained
    assert all(torch.isfinite(after[k]).all() for k in before)


def test_init_copies_the_networks_and_allows_another_estimator(tmp_path, tiny_model_config, tiny_weights):
    from dvclic.checkpoint import load_weights
    from dvclic.train.engine import init_from_weights

    source = load_weights(tiny_weights)
    with_dis = tiny_model_config.to_dict() | {"estimator": {"name": "dis"}}
    p = tmp_path / "dis.yaml"
    p.write_text(yaml.safe_dump(with_dis))
    cfg = train_config_from_dict(tiny_train_dict(p, steps=1))
    trainer = Trainer(cfg, tmp_path / "run", device="cpu", init=str(tiny_weights))
    assert trainer.init_source["source"] == tiny_weights.name
    got, want = trainer.model.state_dict(), source.model.state_dict()
    for k, v in got.items():
        if not k.endswith(".bound"):  # compressai's constants stay exact (not the stored fp16)
            assert torch.equal(v, want[k]), k
    assert not list(trainer.model.pframe.estimator.parameters())
    wider = tiny_model_config.to_dict() | {"intra": {"codec": "hyperprior", "N": 16, "M": 32}}
    from dvclic.config import model_config_from_dict
    from dvclic.model import build_model

    with pytest.raises(InputError, match="do not fit"):
        init_from_weights(build_model(model_config_from_dict(wider, "wider")), tiny_weights)


def test_init_part_joins_parts_of_two_runs(tmp_path, tiny_model_config, tiny_weights):
    """--init-part PART=W: that part comes from W, every other part from --init; both recorded."""
    from dvclic.checkpoint import load_weights, save_weights
    from dvclic.config import model_config_from_dict
    from dvclic.model import build_model
    from dvclic.train.engine import init_parts_from_weights

    torch.manual_seed(2)
    other_path = tmp_path / "other.pt"
    save_weights(build_model(tiny_model_config), tiny_model_config, other_path, provenance={"steps": 7})
    base, other = load_weights(tiny_weights).model, load_weights(other_path).model
    p = tmp_path / "tiny.yaml"
    p.write_text(yaml.safe_dump(tiny_model_config.to_dict()))
    cfg = train_config_from_dict(tiny_train_dict(p, steps=1))
    trainer = Trainer(cfg, tmp_path / "run", device="cpu", init=str(tiny_weights),
                      init_parts={"intra": str(other_path), "mc_net": str(other_path)})
    got = trainer.model.state_dict()
    for k, v in got.items():
        if k.endswith(".bound"):
            continue
        src = other if k.startswith(("intra.", "pframe.mc_net.")) else base
        assert torch.equal(v, src.state_dict()[k]), k
    assert any(not torch.equal(base.state_dict()[k], other.state_dict()[k])  # the test can tell them apart
               for k in got if k.startswith("intra.") and not k.endswith(".bound"))
    assert trainer.init_source["source"] == tiny_weights.name
    assert trainer.init_source["parts"]["intra"]["source"] == "other.pt"
    assert trainer.init_source["parts"]["intra"]["path"] == str(other_path)  # the path as given
    assert trainer.init_source["parts"]["mc_net"]["steps"] == 7
    with pytest.raises(InputError, match="no part 'decoder'"):
        init_parts_from_weights(build_model(tiny_model_config), {"decoder": tiny_weights})
    wider = model_config_from_dict(tiny_model_config.to_dict() | {"intra": {"codec": "hyperprior", "N": 16, "M": 32}})
    with pytest.raises(InputError, match="does not fit"):
        init_parts_from_weights(build_model(wider), {"intra": tiny_weights})
    init_parts_from_weights(build_model(wider), {"residual_codec": tiny_weights})  # other parts may differ


def test_init_maps_quality_gains_by_lambda(tiny_model_config, tiny_weights):
    """A model with another λ ladder: shared λs keep their gains, new ones are log-λ extrapolations."""
    from dvclic.checkpoint import load_weights
    from dvclic.config import model_config_from_dict
    from dvclic.model import build_model
    from dvclic.train.engine import init_from_weights

    src = load_weights(tiny_weights)  # lambdas 256, 1024
    wider = model_config_from_dict(tiny_model_config.to_dict() | {"num_qualities": 3, "lambdas": [128, 256, 1024]})
    model = build_model(wider)
    info = init_from_weights(model, tiny_weights, lambdas=wider.lambdas)
    assert info["qualities_from"] == {"lambdas": [256.0, 1024.0], "to": [128.0, 256.0, 1024.0], "tables": 6}
    for codec_src, codec in ((src.model.intra, model.intra), (src.model.pframe.residual_codec,
                                                              model.pframe.residual_codec)):
        old, new = codec_src.gain.log_gain.detach(), codec.gain.log_gain.detach()
        assert torch.equal(new[1], old[0]) and torch.equal(new[2], old[1])
        # log 128 = log 256 - (log 1024 - log 256) / 2
        assert torch.allclose(new[0], old[0] - (old[1] - old[0]) / 2, atol=1e-6)
    with pytest.raises(InputError, match="do not fit"):  # without the ladder the shapes differ
        init_from_weights(build_model(wider), tiny_weights)


def _write_frames(folder: Path, n: int, size: int = 40) -> None:
    from PIL import Image

    folder.mkdir(parents=True)
    for i in range(n):  # frame i is a flat picture of value 5*i, so a clip shows its step
        Image.new("RGB", (size, size), (5 * i, 5 * i, 5 * i)).save(folder / f"{i:05d}.png")


def test_frame_folders_draw_steps_within_bounds(tmp_path):
    from dvclic.train.data import FrameFolders

    _write_frames(tmp_path / "seq_a", 10)
    _write_frames(tmp_path / "seq_b", 3)
    data = FrameFolders(tmp_path, frames=3, stride=2, max_step=3, augment=Augment(crop=32, reverse=False))
    assert len(data) == 4 + 1  # starts 0, 2, 4, 6 in seq_a; 0 in seq_b
    steps = set()
    for epoch in range(6):
        data.set_epoch(epoch)
        for i in range(len(data)):
            values = [round(float(f.mean()) * 255 / 5) for f in data[i]]
            step = values[1] - values[0]
            assert values[2] - values[1] == step and 1 <= step <= 3
            assert values[2] <= (9 if i < 4 else 2)
            steps.add(step)
    assert steps == {1, 2, 3}
    with pytest.raises(InputError, match="consecutive frames"):
        FrameFolders(tmp_path / "seq_b", frames=4, augment=Augment(crop=32))


def test_random_downscale_shrinks_before_the_crop():
    g = torch.Generator().manual_seed(0)
    ramp = torch.linspace(0, 1, 512).repeat(512, 1)[None, None].expand(1, 3, 512, 512)
    shrunk = Augment(crop=64, flips=False, reverse=False, downscale=(4.0, 4.0))(ramp, g)
    plain = Augment(crop=64, flips=False, reverse=False)(ramp, torch.Generator().manual_seed(0))
    assert shrunk.shape == plain.shape == (1, 3, 64, 64)
    # a 4x smaller picture has a 4x steeper ramp inside the crop
    slope = lambda x: float(x[0, 0, 0, -1] - x[0, 0, 0, 0])  # noqa: E731
    assert slope(shrunk) == pytest.approx(4 * slope(plain), rel=0.05)
    with pytest.raises(ValueError):
        Augment(downscale=(0.5, 2.0))


def test_train_config_parses_downscale_and_frame_sources():
    raw = {"model": "m.yaml", "stages": [{"task": "intra", "steps": 1, "trainable": ["intra"]}],
           "data": [{"kind": "frames", "root": "x", "stride": 2, "max_step": 2}], "downscale": [1.0, 2.5]}
    cfg = train_config_from_dict(raw)
    assert cfg.downscale == (1.0, 2.5) and cfg.data[0].kind == "frames"
    from dvclic.config import ConfigError

    with pytest.raises(ConfigError, match="downscale"):
        train_config_from_dict({**raw, "downscale": [2.0, 1.0]})


def test_train_config_extends_merges_top_level_keys(tmp_path):
    import yaml

    from dvclic.config import ConfigError

    base = {"model": "m.yaml", "seed": 1, "batch_size": 4,
            "stages": [{"task": "intra", "steps": 5, "trainable": ["intra"]}],
            "data": [{"kind": "frames", "root": "x", "stride": 2}, {"kind": "images", "root": "y"}]}
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "base.yaml").write_text(yaml.safe_dump(base))
    (tmp_path / "mid.yaml").write_text(yaml.safe_dump({"extends": "sub/base.yaml", "seed": 2}))
    child = {"extends": "mid.yaml", "stages": [{"task": "intra", "steps": 7, "trainable": ["intra"]}],
             "data": [{"kind": "images", "root": "z"}]}
    (tmp_path / "child.yaml").write_text(yaml.safe_dump(child))
    cfg = load_train_config(tmp_path / "child.yaml")
    # the child's lists replace the parent's whole; the middle file's seed replaces the base's
    assert cfg.seed == 2 and cfg.batch_size == 4 and cfg.stages[0].steps == 7
    assert [d.params["root"] for d in cfg.data] == ["z"]
    assert "extends" not in cfg.raw and cfg.raw["model"] == "m.yaml"  # provenance records the merged config
    assert load_train_config(tmp_path / "mid.yaml").data == train_config_from_dict(base).data

    (tmp_path / "a.yaml").write_text(yaml.safe_dump({**base, "extends": "b.yaml"}))
    (tmp_path / "b.yaml").write_text(yaml.safe_dump({"extends": "a.yaml"}))
    with pytest.raises(ConfigError, match="cycle"):
        load_train_config(tmp_path / "a.yaml")
    (tmp_path / "lost.yaml").write_text(yaml.safe_dump({"extends": "missing.yaml"}))
    with pytest.raises(ConfigError, match="not found"):
        load_train_config(tmp_path / "lost.yaml")
    (tmp_path / "two.yaml").write_text(yaml.safe_dump({"extends": ["a.yaml", "b.yaml"]}))
    with pytest.raises(ConfigError, match="one config file"):
        load_train_config(tmp_path / "two.yaml")
    for i in range(9):  # a chain of 9 files is one too long; 8 load
        (tmp_path / f"c{i}.yaml").write_text(yaml.safe_dump({"extends": f"c{i + 1}.yaml"} if i < 8 else base))
    assert load_train_config(tmp_path / "c1.yaml").seed == 1
    with pytest.raises(ConfigError, match="longer than 8"):
        load_train_config(tmp_path / "c0.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_train_config(tmp_path / "list.yaml")
