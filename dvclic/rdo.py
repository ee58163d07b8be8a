"""Rate-distortion mode decisions of the sequence encoder (format v2 modes).

For every P-frame the encoder codes the candidates with real bytes and keeps the
one with the lowest ``J = bits / (H*W) + lambda * MSE`` (RGB in [0, 1], the
padded frame; the training loss's scale, with the model's lambda for the
quality)::

    motion-compensated prediction (coded flow + MC net)
    coded flow, prediction = warped reference (no MC net)
    zero motion: prediction = the reference itself (no motion bits)
    an I-frame
    the best P candidate again with a skip mask, if any block is cheaper skipped

A block (``PFrameCodec.block_size``) is skipped when keeping the prediction
costs less than coding it: ``lambda * SSE_skip / 3 <= lambda * SSE_coded / 3 +
bits`` (SSE over the block's RGB samples, bits = the block's residual-latent
rate from the entropy model under hard rounding). The masked frame is coded
again and kept only if its real J is lower. Each candidate's symbols go through
its own coder digest, so the kept one carries its symbol hash.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from image_codecs.entropy.coders import SafeAns
from image_codecs.quantize import HardRound
from image_codecs.transform_codec import TransformCodec

from .bitstream import FRAME_I, FRAME_P, MODE_NO_MC, MODE_SKIP, MODE_ZERO_MOTION, SYMBOLS_HASH_BYTES
from .pframe import CodedMotion, CodedPFrame, ImageCompressor, PFrameCodec, PMode, plain_compress

#: Candidate names, as ``--modes`` spells them.
MODE_NAMES = ("mc", "warp", "zero", "skip", "intra")
DEFAULT_MODES = ",".join(MODE_NAMES)  # every candidate


@dataclass(frozen=True)
class ModeSet:
    """Which candidates the encoder may use (``mc`` alone = the version-1 behaviour)."""

    mc: bool = True
    warp: bool = True
    zero: bool = True
    skip: bool = True
    intra: bool = True

    @classmethod
    def parse(cls, names: str) -> ModeSet:
        chosen = {n.strip() for n in names.split(",") if n.strip()}
        unknown = chosen - set(MODE_NAMES)
        if unknown or not chosen & {"mc", "warp", "zero"}:
            raise ValueError(f"modes must be a comma list of {', '.join(MODE_NAMES)} with at least one of "
                             f"mc, warp, zero; got {names!r}")
        return cls(**{n: n in chosen for n in MODE_NAMES})


def symbols_digest() -> "hashlib._Hash":
    return hashlib.blake2b(digest_size=SYMBOLS_HASH_BYTES)


def finish_digest(digest: "hashlib._Hash", frame_type: int, quality: int, modes: int) -> bytes:
    """The frame's symbol hash: its symbols, then (type, quality, modes)."""
    final = digest.copy()
    final.update(bytes([frame_type, quality, modes]))
    return final.digest()


def mode_label(frame_type: int, modes: int) -> str:
    """A frame's coding mode in words: intra, mc, warp or zero, with +skip."""
    if frame_type == FRAME_I:
        return "intra"
    base = "zero" if modes & MODE_ZERO_MOTION else ("warp" if modes & MODE_NO_MC else "mc")
    return base + ("+skip" if modes & MODE_SKIP else "")


def mode_flags(mode: PMode) -> int:
    return ((MODE_ZERO_MOTION if mode.zero_motion else 0) | (0 if mode.use_mc else MODE_NO_MC)
            | (MODE_SKIP if mode.skip is not None else 0))


@dataclass(frozen=True)
class Choice:
    """One coded candidate."""

    frame_type: int
    modes: int
    sections: list[bytes]
    x_hat: Tensor
    symbols_hash: bytes
    intra_bytes: int = 0
    motion_bytes: int = 0
    residual_bytes: int = 0
    cost: float = float("inf")
    skipped_blocks: int = 0
    coded_p: CodedPFrame | None = None  # P choices: the coded frame (prediction, motion; for inspection)


def rd_cost(num_bytes: int, x_hat: Tensor, x: Tensor, lmbda: float) -> float:
    h, w = x.shape[-2:]
    return num_bytes * 8.0 / (h * w) + lmbda * float(F.mse_loss(x_hat.clamp(0.0, 1.0), x))


def code_intra(intra, x: Tensor, quality: int, compress: ImageCompressor, lmbda: float) -> Choice:  # noqa: ANN001
    digest = symbols_digest()
    coded = compress(intra, x, quality, coder=SafeAns(digest=digest))
    return Choice(FRAME_I, 0, list(coded.strings), coded.x_hat, finish_digest(digest, FRAME_I, quality, 0),
                  intra_bytes=coded.num_bytes, cost=rd_cost(coded.num_bytes, coded.x_hat, x, lmbda))


def _code_p(pf: PFrameCodec, x: Tensor, ref: Tensor, quality: int, mode: PMode, motion: CodedMotion,
            motion_digest: "hashlib._Hash", compress: ImageCompressor, lmbda: float) -> Choice:
    digest = motion_digest.copy()
    coded = pf.compress(x, ref, quality, mode=mode, motion=motion, coder=SafeAns(digest=digest),
                        compress_residual=compress)
    flags = mode_flags(mode)
    n = coded.motion_bytes + coded.residual_bytes
    return Choice(FRAME_P, flags, coded.sections, coded.x_hat, finish_digest(digest, FRAME_P, quality, flags),
                  motion_bytes=coded.motion_bytes, residual_bytes=coded.residual_bytes,
                  cost=rd_cost(n, coded.x_hat, x, lmbda),
                  skipped_blocks=0 if mode.skip is None else int(mode.skip.sum()), coded_p=coded)


def block_skip_decision(pf: PFrameCodec, x: Tensor, best: Choice, quality: int, lmbda: float) -> Tensor | None:
    """bool [H/B x W/B] blocks cheaper skipped than coded (None: none, or not supported)."""
    codec = pf.residual_codec
    if not isinstance(codec, TransformCodec) or not getattr(codec.entropy, "supports_latent_mask", False):
        return None
    coded = best.coded_p
    pred, x_hat = coded.pred, coded.x_hat
    with torch.no_grad():
        y, z = codec.analysis(x - pred, quality)
        bits = -torch.log2(codec.latent_forward(y, z, quality, HardRound()).likelihoods["y"]).sum(1, keepdim=True)
    b = pf.block_size
    r = b // codec.latent_stride
    block_bits = F.avg_pool2d(bits, r) * (r * r)
    sse_skip = F.avg_pool2d(((x - pred) ** 2).sum(1, keepdim=True), b) * (b * b)
    sse_code = F.avg_pool2d(((x - x_hat.clamp(0, 1)) ** 2).sum(1, keepdim=True), b) * (b * b)
    skip = (lmbda * sse_skip / 3 <= lmbda * sse_code / 3 + block_bits)[0, 0]
    return skip if bool(skip.any()) else None


def code_motion(pf: PFrameCodec, x: Tensor, ref: Tensor, quality: int) -> tuple[CodedMotion, "hashlib._Hash"]:
    """The frame's estimated and coded motion, with the symbol digest the candidates continue."""
    digest = symbols_digest()
    return pf.code_motion(x, ref, quality, coder=SafeAns(digest=digest)), digest


@torch.no_grad()
def choose_pframe(pf: PFrameCodec, intra, x: Tensor, ref: Tensor, quality: int, *, lmbda: float,  # noqa: ANN001
                  modes: ModeSet, compress: ImageCompressor = plain_compress,
                  motion: tuple[CodedMotion, "hashlib._Hash"] | None = None) -> Choice:
    """Code every allowed candidate for ``x`` (1 x 3 x H x W) and return the cheapest.

    ``motion``: the frame's coded motion and the digest its symbols went through (from
    :func:`code_motion`), when the caller has coded it already.
    """
    motions: dict[bool, tuple[CodedMotion, "hashlib._Hash"]] = {}  # zero_motion -> (motion, its digest)
    candidates: list[Choice] = []
    if modes.mc or modes.warp:
        motions[False] = motion or code_motion(pf, x, ref, quality)
        for use_mc in [m for m, on in ((True, modes.mc), (False, modes.warp)) if on]:
            candidates.append(_code_p(pf, x, ref, quality, PMode(use_mc=use_mc), *motions[False], compress, lmbda))
    if modes.zero:
        motions[True] = (CodedMotion(torch.zeros_like(x[:, :2]), None), symbols_digest())
        candidates.append(_code_p(pf, x, ref, quality, PMode(zero_motion=True, use_mc=False), *motions[True],
                                  compress, lmbda))
    best = min(candidates, key=lambda c: c.cost)
    if modes.skip:
        skip = block_skip_decision(pf, x, best, quality, lmbda)
        if skip is not None:
            m = best.coded_p.mode
            masked = _code_p(pf, x, ref, quality, PMode(m.zero_motion, m.use_mc, skip), *motions[m.zero_motion],
                             compress, lmbda)
            best = min(best, masked, key=lambda c: c.cost)
    if modes.intra:
        best = min(best, code_intra(intra, x, quality, compress, lmbda), key=lambda c: c.cost)
    return best
