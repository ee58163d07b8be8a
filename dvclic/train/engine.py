"""Training engine: staged schedule, DDP (torchrun), resumable checkpoints, logs.

Run with one process (``python tools/train.py ...``) or several
(``torchrun --nproc_per_node=K tools/train.py ...``): each rank samples its own
share of the data through a DistributedSampler, gradients are averaged by DDP,
and rank 0 writes logs, checkpoints and the exported weights.

A checkpoint (``OUT/last.pt``) holds the model, both optimizers, the schedule
position (stage, step), every RNG state and the configs, so ``--resume``
continues exactly where a killed run stopped: data order and augmentation are
functions of (seed, epoch, index), quality draws of (seed, stage, step, rank).
"""

from __future__ import annotations

import copy
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from ..checkpoint import atomic_torch_save, save_weights
from ..store import ModelStore, read_training_checkpoint
from ..compact import is_constant_bound
from ..config import ModelConfig, load_model_config
from ..errors import InputError
from ..metrics import psnr_rgb
from ..model import VideoCodecModel, build_model
from ..sequence import SequenceEncoder
from .config import DataSpec, StageConfig, TrainConfig
from .data import Augment, FrameFolders, ImageFolder, Mixture, ResumableSampler, VideoClips, VimeoSeptuplets
from .step import TrainStep


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str) -> DistInfo:
    """Join the torchrun process group if WORLD_SIZE > 1 (nccl on CUDA, gloo on CPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    dev = torch.device("cuda", local) if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return DistInfo(rank=rank, world=world, device=dev)


def build_dataset(specs: tuple[DataSpec, ...], *, frames: int, crop: int, seed: int, train: bool,
                  downscale: tuple[float, float] = (1.0, 1.0)) -> Mixture:
    aug = Augment(crop=crop, flips=train, reverse=train, downscale=downscale if train else (1.0, 1.0))
    parts = []
    for s in specs:
        p = dict(s.params)
        if s.kind == "vimeo":
            parts.append(VimeoSeptuplets(p["root"], split=p.get("split", "train"), frames=frames, augment=aug,
                                         seed=seed, max_step=int(p.get("max_step", 1)) if train else 1))
        elif s.kind == "frames":
            parts.append(FrameFolders(p["root"], frames=frames, stride=int(p.get("stride", 4)),
                                      max_step=int(p.get("max_step", 1)) if train else 1, augment=aug, seed=seed))
        elif s.kind == "video":
            parts.append(VideoClips(p["path"], frames=frames, stride=int(p.get("stride", 8)),
                                    max_clips=int(p.get("max_clips", 64)), augment=aug, seed=seed))
        else:
            if frames > 1:
                continue  # still images cannot train P-frames
            parts.append(ImageFolder(p["root"], augment=aug, seed=seed, exclude=p.get("exclude", ())))
    if not parts:
        raise InputError(f"no data source provides {frames}-frame clips")
    return Mixture(parts)


def _rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _parts(model: VideoCodecModel) -> dict[str, nn.Module]:
    pf = model.pframe
    return {"intra": model.intra, "estimator": pf.estimator, "motion_codec": pf.motion_codec,
            "mc_net": pf.mc_net, "residual_codec": pf.residual_codec}


def _gain_rows(rows: torch.Tensor, src: Sequence[float], dst: Sequence[float]) -> torch.Tensor:
    """Per-quality log gains (Q_src x C) for the λ ladder ``dst``: rows of λs the source has are
    copied; others are interpolated (or extrapolated from the two nearest) linearly in log λ."""
    x = torch.tensor([math.log(v) for v in src], dtype=torch.float64)
    order = torch.argsort(x)
    x, rows64 = x[order], rows.detach().to(torch.float64)[order]
    out = []
    for lam in dst:
        t = math.log(lam)
        hit = (x - t).abs() < 1e-12
        if hit.any():
            out.append(rows64[int(hit.nonzero()[0])])
            continue
        if len(x) == 1:
            out.append(rows64[0])
            continue
        i = int(torch.searchsorted(x, torch.tensor(t, dtype=torch.float64)).clamp(1, len(x) - 1))
        w = (t - x[i - 1]) / (x[i] - x[i - 1])
        out.append(rows64[i - 1] + w * (rows64[i] - rows64[i - 1]))
    return torch.stack(out).to(rows.dtype)


def _remap_qualities(state: dict[str, torch.Tensor], src: Sequence[float], dst: Sequence[float]) -> list[str]:
    """Rewrite every quality-gain table of ``state`` (in place) from λ ladder ``src`` to ``dst``."""
    keys = [k for k in state if k.endswith((".gain.log_gain", ".gain.log_inv_gain"))]
    for k in keys:
        state[k] = _gain_rows(state[k], src, dst)
    return keys


def _source_record(source: str | Path, loaded: Any) -> dict[str, Any]:
    """What the provenance keeps of an ``--init`` / ``--init-part`` source (a ``LoadedWeights``)."""
    return {"source": Path(source).name, "path": str(source), "kind": loaded.kind, "config": loaded.config.name,
            "steps": loaded.provenance.get("steps"), "init": loaded.provenance.get("init")}


def init_from_weights(model: VideoCodecModel, source: str | Path, lambdas: Sequence[float] | None = None
                      ) -> dict[str, Any]:
    """Load the networks of a weights file or checkpoint into ``model`` (``--init``).

    Parts whose architecture matches are copied. The estimator may differ (e.g. a
    learned estimator replaced by the classical ``dis``, which has no parameters),
    and a context model the source lacks starts from its initialisation (e.g. a
    ``hyperprior`` codec continued as ``msp``, whose other parts are the hyperprior's).
    With ``lambdas`` (the new model's λ ladder) different from the source's, the per-quality
    gains are mapped by λ: shared λs keep their gains, new ones start from gains interpolated
    (or extrapolated) in log λ, so a model can gain qualities. Any other mismatch is an error.
    Returns the source's provenance.
    """
    loaded = ModelStore().load(source, checkpoints=True)
    src_cfg = loaded.config
    remapped: list[str] = []
    try:
        state = {k: v for k, v in loaded.model.state_dict().items() if not is_constant_bound(k)}
        if lambdas is not None and [float(v) for v in lambdas] != [float(v) for v in src_cfg.lambdas]:
            remapped = _remap_qualities(state, src_cfg.lambdas, lambdas)
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:
        raise InputError(f"--init {source}: networks do not fit this model config "
                         f"({str(exc).splitlines()[-1].strip()})") from None
    fresh = sorted({k.split(".entropy.context.")[0] + ".entropy.context" for k in result.missing_keys
                    if ".entropy.context." in k})
    stray = [k for k in (*result.missing_keys, *result.unexpected_keys)
             if not k.startswith("pframe.estimator.") and not is_constant_bound(k) and ".entropy.context." not in k]
    if stray:
        raise InputError(f"--init {source}: networks do not fit this model config ({stray[0]} ...)")
    out = _source_record(source, loaded)
    if fresh:
        out["fresh"] = fresh
    if remapped:
        out["qualities_from"] = {"lambdas": list(src_cfg.lambdas), "to": list(lambdas), "tables": len(remapped)}
    return out


def init_parts_from_weights(model: VideoCodecModel, parts: Mapping[str, str | Path],
                            lambdas: Sequence[float] | None = None) -> dict[str, dict[str, Any]]:
    """Replace single parts of ``model`` (``--init-part PART=WEIGHTS``) by those of other files.

    Runs that trained different parts from the same weights (e.g. the intra codec on one core and
    the motion codec on another) are joined this way. Each named part (``intra``, ``estimator``,
    ``motion_codec``, ``mc_net``, ``residual_codec``) must have the same architecture in the
    source; its quality gains are mapped by λ as with ``--init``. Returns each part's provenance.
    """
    modules = _parts(model)
    prefix = {id(m): name for name, m in model.named_modules()}
    out: dict[str, dict[str, Any]] = {}
    for part, source in parts.items():
        if part not in modules:
            raise InputError(f"--init-part {part}={source}: no part {part!r} (parts: {', '.join(modules)})")
        loaded = ModelStore().load(source, checkpoints=True)
        src_cfg = loaded.config
        head = prefix[id(modules[part])] + "."
        state = {k[len(head):]: v for k, v in loaded.model.state_dict().items()
                 if k.startswith(head) and not is_constant_bound(k)}
        if not state and any(True for _ in modules[part].parameters()):
            raise InputError(f"--init-part {part}={source}: the source has no {part}")
        if lambdas is not None and [float(v) for v in lambdas] != [float(v) for v in src_cfg.lambdas]:
            _remap_qualities(state, src_cfg.lambdas, lambdas)
        try:
            result = modules[part].load_state_dict(state, strict=False)
        except RuntimeError as exc:
            raise InputError(f"--init-part {part}={source}: the part does not fit this model config "
                             f"({str(exc).splitlines()[-1].strip()})") from None
        stray = [k for k in (*result.missing_keys, *result.unexpected_keys) if not is_constant_bound(head + k)]
        if stray:
            raise InputError(f"--init-part {part}={source}: the part does not fit this model config ({stray[0]} ...)")
        out[part] = _source_record(source, loaded)
    return out


class Trainer:
    """Runs a TrainConfig's stages; see the module docstring."""

    def __init__(self, cfg: TrainConfig, out_dir: str | Path, *, device: str = "auto",
                 init: str | Path | None = None, init_parts: Mapping[str, str | Path] | None = None) -> None:
        self.cfg = cfg
        self.out = Path(out_dir)
        self.dist = init_distributed(device)
        self.model_cfg: ModelConfig = load_model_config(cfg.model)
        torch.manual_seed(cfg.seed)  # identical initial weights on every rank
        self.model = build_model(self.model_cfg)
        self.init_source = (None if init is None
                            else init_from_weights(self.model, init, lambdas=self.model_cfg.lambdas))
        if init_parts:
            parts = init_parts_from_weights(self.model, init_parts, lambdas=self.model_cfg.lambdas)
            self.init_source = {**(self.init_source or {}), "parts": parts}
        self.model.to(self.dist.device)
        self.lambdas = torch.tensor(self.model_cfg.lambdas, device=self.dist.device)
        self.stage_idx = 0
        self.step = 0
        self.global_step = 0
        self._opt_state: tuple[dict, dict] | None = None
        self._writer = None
        self._deadline: float | None = None
        #: True when the last run() stopped at the config's time limit before its last step
        self.stopped_early = False

    # -- checkpointing ------------------------------------------------------
    @property
    def ckpt_path(self) -> Path:
        return self.out / "last.pt"

    def save_checkpoint(self, opt: torch.optim.Optimizer, aux_opt: torch.optim.Optimizer) -> None:
        if not self.dist.is_main:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        atomic_torch_save({
            "model": self.model.state_dict(), "optimizer": opt.state_dict(), "aux_optimizer": aux_opt.state_dict(),
            "stage": self.stage_idx, "step": self.step, "global_step": self.global_step, "rng": _rng_state(),
            "model_config": self.model_cfg.to_dict(), "train_config": dict(self.cfg.raw), "init": self.init_source,
        }, self.ckpt_path)

    def load_checkpoint(self) -> None:
        if not self.ckpt_path.is_file():
            raise InputError(f"--resume: no checkpoint at {self.ckpt_path}")
        ck = read_training_checkpoint(self.ckpt_path, map_location=self.dist.device)
        self.model.load_state_dict(ck["model"])
        self.stage_idx, self.step, self.global_step = ck["stage"], ck["step"], ck["global_step"]
        self.init_source = ck.get("init", self.init_source)
        self._opt_state = (ck["optimizer"], ck["aux_optimizer"])
        _set_rng_state(ck["rng"])

    # -- main loop ----------------------------------------------------------
    def run(self, *, resume: bool = False) -> Path | None:
        if resume:
            self.load_checkpoint()
        if self.dist.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.out / "tb"))
        if self.cfg.time_limit_s > 0:
            self._deadline = time.monotonic() + self.cfg.time_limit_s
        self.stopped_early = False
        first = True
        while self.stage_idx < len(self.cfg.stages):
            # a stage starts only in time (the first always runs a step, so a checkpoint exists)
            if (not first and self._out_of_time()) or not self._run_stage(self.cfg.stages[self.stage_idx]):
                self.stopped_early = True
                break
            first = False
            self.stage_idx += 1
            self.step = 0
        weights = None
        if self.dist.is_main:
            self._writer.close()
            weights = self.out / "weights.pt"
            export = copy.deepcopy(self.model).cpu()  # save_weights rounds to fp16 in place
            save_weights(export, self.model_cfg, weights, storage="fp16", provenance={
                "train_config": dict(self.cfg.raw), "steps": self.global_step, "world_size": self.dist.world,
                "init": self.init_source,
            })
        if self.dist.world > 1:
            dist.barrier()
        return weights

    def _out_of_time(self) -> bool:
        """The time limit has passed (on every rank alike: rank 0's clock decides)."""
        if self._deadline is None:
            return False
        if self.dist.world == 1:
            return time.monotonic() > self._deadline
        late = torch.tensor([time.monotonic() > self._deadline], dtype=torch.int32, device=self.dist.device)
        dist.broadcast(late, src=0)
        return bool(late.item())

    def _run_stage(self, stage: StageConfig) -> bool:
        """Train one stage; False when the time limit stopped it (its checkpoint is written)."""
        cfg, d = self.cfg, self.dist
        parts = _parts(self.model)
        self.model.train()
        for name, module in parts.items():
            module.requires_grad_(name in stage.trainable)
        named = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
        main_params = [p for n, p in named if not n.endswith("quantiles")]
        aux_params = [p for n, p in named if n.endswith("quantiles")]
        opt = torch.optim.Adam(main_params, lr=stage.lr)
        aux_opt = torch.optim.Adam(aux_params or [torch.zeros(1, requires_grad=True)], lr=cfg.aux_lr)
        if self._opt_state is not None:
            opt.load_state_dict(self._opt_state[0])
            aux_opt.load_state_dict(self._opt_state[1])
            self._opt_state = None
        step_module: nn.Module = TrainStep(self.model, stage, cfg.distortion)
        if d.world > 1:
            step_module = DistributedDataParallel(step_module, find_unused_parameters=True)

        batch = stage.batch_size or cfg.batch_size
        data = build_dataset(cfg.data, frames=stage.frames, crop=cfg.crop, seed=cfg.seed, train=True,
                             downscale=cfg.downscale)
        sampler = ResumableSampler(data, num_replicas=d.world, rank=d.rank, seed=cfg.seed)
        per_epoch = (len(sampler) // batch)
        if per_epoch < 1:
            raise InputError(f"stage {stage.name}: {len(data)} clips are too few for batch {batch} x {d.world} ranks")
        from tqdm import tqdm

        bar = tqdm(total=stage.steps, initial=self.step, desc=stage.name, disable=not d.is_main, leave=False)
        t0 = time.time()
        finished = True
        while finished and self.step < stage.steps:
            epoch, offset = divmod(self.step, per_epoch)
            sampler.set_epoch(epoch)
            data.set_epoch(epoch)
            sampler.start = offset * batch
            loader = DataLoader(data, batch_size=batch, sampler=sampler, drop_last=True,
                                num_workers=cfg.workers, generator=torch.Generator().manual_seed(cfg.seed),
                                persistent_workers=False)
            for clip in loader:
                if self.step >= stage.steps:
                    break
                metrics = self._train_step(step_module, opt, aux_opt, clip.to(d.device), stage)
                self.step += 1
                self.global_step += 1
                bar.update(1)
                if d.is_main and (self.step % cfg.log_every == 0 or self.step == stage.steps):
                    for k, v in metrics.items():
                        self._writer.add_scalar(f"{stage.name}/{k}", float(v), self.global_step)
                    bar.set_postfix({k: f"{float(v):.4g}" for k, v in metrics.items()})
                if self.step % cfg.ckpt_every == 0 or self.step == stage.steps:
                    self.save_checkpoint(opt, aux_opt)
                if cfg.val_every and self.step % cfg.val_every == 0 and self.step < stage.steps:
                    self.validate(stage)
                if self.step < stage.steps and self._out_of_time():
                    self.save_checkpoint(opt, aux_opt)
                    finished = False
                    break
        bar.close()
        if d.is_main:
            if finished:
                print(f"stage {stage.name}: {stage.steps} steps in {time.time() - t0:.0f} s", flush=True)
            else:
                print(f"stage {stage.name}: stopped at the time limit after step {self.step} of {stage.steps} "
                      f"({time.time() - t0:.0f} s); --resume goes on from there", flush=True)
        self.validate(stage)
        return finished

    def _train_step(self, step_module: nn.Module, opt: torch.optim.Optimizer, aux_opt: torch.optim.Optimizer,
                    clip: torch.Tensor, stage: StageConfig) -> dict[str, torch.Tensor]:
        cfg, d = self.cfg, self.dist
        g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + self.stage_idx * 100_003 + self.step * 101 + d.rank)
        q = torch.randint(0, len(self.model_cfg.lambdas), (clip.shape[0],), generator=g).to(d.device)
        opt.zero_grad(set_to_none=True)
        aux_opt.zero_grad(set_to_none=True)
        with torch.autocast(d.device.type, dtype=torch.bfloat16, enabled=cfg.amp):
            loss, aux, metrics = step_module(clip, q, self.lambdas[q])
        (loss.float() + aux.float()).backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_([p for grp in opt.param_groups for p in grp["params"]], cfg.grad_clip)
        opt.step()
        aux_opt.step()
        metrics = {"loss": loss.detach(), "aux": aux.detach(), **metrics}
        return metrics

    @torch.no_grad()
    def validate(self, stage: StageConfig) -> dict[str, float] | None:
        """Code held-out clips with real bytes (rank 0); logs bpp/PSNR per quality.

        Every rank rebuilds the entropy tables (deterministic given identical
        parameters), so buffers keep the same shapes on all ranks for DDP.
        """
        if not self.cfg.val:
            return None
        self.model.update(force=True)
        if not self.dist.is_main:
            return None
        frames = max(s.frames for s in self.cfg.stages) if stage.task == "pframe" else 1
        data = build_dataset(self.cfg.val, frames=frames, crop=self.cfg.crop, seed=self.cfg.seed, train=False)
        model = self.model
        was_training = model.training
        model.eval()
        results = {}
        for q in range(model.num_qualities):
            bits = pix = 0
            psnrs = []
            for i in range(min(len(data), self.cfg.val_clips)):
                clip = data[i].to(self.dist.device)
                enc = SequenceEncoder(model, quality=q, intra_period=-1)
                for t in range(clip.shape[0]):
                    coded = enc.encode(clip[t:t + 1])
                    bits += 8 * coded.unit.num_bytes
                    pix += clip.shape[-1] * clip.shape[-2]
                    psnrs.append(psnr_rgb(coded.x_hat, clip[t:t + 1]))
            results[f"q{q}/bpp"] = bits / pix
            results[f"q{q}/psnr"] = sum(psnrs) / len(psnrs)
        for k, v in results.items():
            self._writer.add_scalar(f"val_{stage.name}/{k}", v, self.global_step)
        print(f"val after {stage.name} step {self.step}: " +
              ", ".join(f"q{q}: {results[f'q{q}/bpp']:.3f} bpp {results[f'q{q}/psnr']:.2f} dB"
                        for q in range(model.num_qualities)), flush=True)
        model.train(was_training)
        return results
