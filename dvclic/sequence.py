"""Sequence coding: GOP structure, the reference buffer, per-frame modes and hashes.

The sequence encoder/decoder own all state (reference frame, frame counter);
the networks are stateless. Frames are tensors 1 x 3 x H x W in [0, 1], already
padded to the model's size multiple. The reference is always the decoder's
reconstruction (clamped to [0, 1]), so encoder and decoder stay in lockstep.

Frames at intra positions (``is_intra``) are I-frames. Every other frame is coded
with the cheapest of the allowed modes (``dvclic.rdo``), an I-frame included.
Each unit carries the hash of its entropy-coded symbols (checked: a mismatch is
a :class:`BitstreamError`) and the hash of the encoder's reconstruction as
written (reported: ``DecodedFrame.exact``). The symbol hash is chained: it covers
the sequence header's coding fields (size, bit depth, ...) and the previous
frame's symbol hash, so a changed header, or frames dropped, duplicated or
reordered, fail the check instead of decoding against the wrong reference.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch
from torch import Tensor

from image_codecs.entropy.coders import CorruptStreamError, IndexedCoder, LegacyRans, SafeAns

from .bitstream import (FRAME_I, MODE_NO_MC, MODE_SKIP, MODE_ZERO_MOTION, RECON_HASH_BYTES, SYMBOLS_HASH_BYTES,
                        VERSION, FrameUnit, SequenceHeader, _header_payload, is_intra_position, valid_intra_period)
from .color import YUVFrame, rgb_to_yuv420
from .errors import BitstreamError
from .model import VideoCodecModel
from .pframe import ImageCompressor, plain_compress
from .rdo import ModeSet, choose_pframe, code_intra, finish_digest, symbols_digest
from .video.padding import crop_to

is_intra = is_intra_position


def reconstruction(x_hat: Tensor, size: tuple[int, int], bit_depth: int) -> tuple[YUVFrame, bytes]:
    """The output frame (cropped to ``size`` = (H, W), YUV 4:2:0 at ``bit_depth``) and its hash."""
    yuv = rgb_to_yuv420(crop_to(x_hat, *size).cpu(), bit_depth)
    h = hashlib.blake2b(digest_size=RECON_HASH_BYTES)
    for plane in yuv.planes:
        h.update(plane.astype(plane.dtype.newbyteorder("<"), copy=False).tobytes())
    return yuv, h.digest()


def header_context(header: SequenceHeader | None) -> bytes:
    """The header's coding fields as bytes (its frame count excluded: patched or open-ended)."""
    if header is None:
        return b""
    return _header_payload(SequenceHeader(**{**header.__dict__, "frame_count": 0}))


def chain_hash(frame_hash: bytes, previous: bytes) -> bytes:
    """A frame's symbol hash bound to the previous one (the first frame's: the header context)."""
    return hashlib.blake2b(previous + frame_hash, digest_size=SYMBOLS_HASH_BYTES).digest()


@dataclass(frozen=True)
class EncodedFrame:
    unit: FrameUnit
    x_hat: Tensor  # padded, clamped: the next reference
    yuv: YUVFrame  # the output frame the decoder reproduces
    intra_bytes: int
    motion_bytes: int
    residual_bytes: int
    skipped_blocks: int = 0


@dataclass(frozen=True)
class DecodedFrame:
    x_hat: Tensor  # padded, clamped
    yuv: YUVFrame
    exact: bool | None  # equals the encoder's reconstruction (None: a version-1 unit, no hash)


class SequenceEncoder:
    """Codes frames one at a time; call :meth:`encode` in display order.

    lmbda: the rate-distortion trade-off of the mode decisions (default: the
    model's training lambda for ``quality``). intra_offset: the I-frames that the intra period
    places are coded ``intra_offset`` qualities higher (capped at the model's highest), a quality
    offset by position in the GOP; every frame unit carries its quality, so the decoder needs
    nothing more. output_size / bit_depth: the frame as
    written (for the reconstruction hash); None = the padded size.
    """

    def __init__(self, model: VideoCodecModel, *, quality: int, intra_period: int, lmbda: float | None = None,
                 output_size: tuple[int, int] | None = None, bit_depth: int = 8,
                 refine: ImageCompressor | None = None, modes: ModeSet = ModeSet(),
                 header: SequenceHeader | None = None, intra_offset: int = 0) -> None:
        if (not 0 <= quality < model.num_qualities or not valid_intra_period(intra_period)
                or intra_offset < 0):
            raise ValueError(f"quality {quality}, intra period {intra_period} or intra offset {intra_offset} out "
                             "of range (check them with "
                             "dvclic.params.CodingParams)")
        self.model = model
        self.quality = quality
        self.intra_period = intra_period
        if lmbda is None and len(model.lambdas) <= quality:
            raise ValueError("the model has no lambda for this quality; pass lmbda")
        self.lmbda = model.lambdas[quality] if lmbda is None else lmbda
        self.intra_quality = min(quality + intra_offset, model.num_qualities - 1)
        self.output_size = output_size
        self.bit_depth = bit_depth
        self.modes = modes
        self._compress = refine or plain_compress
        self._ref: Tensor | None = None
        self._index = 0
        self._chain = header_context(header)

    @torch.no_grad()
    def encode(self, x: Tensor) -> EncodedFrame:
        q = self.quality
        if is_intra(self._index, self.intra_period):
            q = self.intra_quality  # the I-frame's RD cost is not compared with anything: λ stays
            choice = code_intra(self.model.intra, x, q, self._compress, self.lmbda)
        else:
            choice = choose_pframe(self.model.pframe, self.model.intra, x, self._ref, q, lmbda=self.lmbda,
                                   modes=self.modes, compress=self._compress)
        x_hat = choice.x_hat.clamp(0.0, 1.0)
        yuv, recon_hash = reconstruction(x_hat, self.output_size or tuple(x.shape[-2:]), self.bit_depth)
        self._ref = x_hat
        self._index += 1
        self._chain = chain_hash(choice.symbols_hash, self._chain)
        unit = FrameUnit(frame_type=choice.frame_type, quality=q, sections=list(choice.sections),
                         modes=choice.modes, symbols_hash=self._chain, recon_hash=recon_hash)
        return EncodedFrame(unit, x_hat, yuv, choice.intra_bytes, choice.motion_bytes, choice.residual_bytes,
                            choice.skipped_blocks)


def _field_offset(unit: FrameUnit, exc: CorruptStreamError) -> int | None:
    """The file offset of the byte a ``CorruptStreamError`` points at (None when it names none)."""
    if exc.stream is None or exc.position is None or not 0 <= exc.stream < len(unit.section_offsets):
        return None
    return unit.section_offsets[exc.stream] + exc.position


class SequenceDecoder:
    """Decodes frame units one at a time (``version``: the stream's format version)."""

    def __init__(self, model: VideoCodecModel, *, padded_size: tuple[int, int],
                 output_size: tuple[int, int] | None = None, bit_depth: int = 8, version: int = VERSION,
                 header: SequenceHeader | None = None) -> None:
        self.model = model
        self.size = padded_size
        self.output_size = output_size or padded_size
        self.bit_depth = bit_depth
        self.version = version
        self._ref: Tensor | None = None
        self._index = 0
        self._chain = header_context(header)

    @torch.no_grad()
    def decode(self, unit: FrameUnit) -> DecodedFrame:
        idx = self._index
        where = f"frame {idx} at byte offset {unit.offset}"
        if not 0 <= unit.quality < self.model.num_qualities:
            raise BitstreamError(f"{where}: quality {unit.quality} outside the model's "
                                 f"0..{self.model.num_qualities - 1}")
        digest = symbols_digest() if self.version >= 2 else None
        coder: IndexedCoder = SafeAns(digest=digest) if self.version >= 2 else LegacyRans()
        try:
            x_hat = self._decode(unit, coder)
        except BitstreamError:
            raise
        except CorruptStreamError as exc:
            at = _field_offset(unit, exc)
            if at is not None:
                raise BitstreamError(f"frame {idx}: invalid field at byte offset {at} "
                                     f"(section {exc.stream}): {exc}") from None
            raise BitstreamError(f"{where}: entropy decoding failed ({exc})") from None
        except (RuntimeError, ValueError, IndexError) as exc:
            raise BitstreamError(f"{where}: entropy decoding failed ({exc})") from None
        if digest is not None:
            chained = chain_hash(finish_digest(digest, unit.frame_type, unit.quality, unit.modes), self._chain)
            if chained != unit.symbols_hash:
                raise BitstreamError(f"{where}: symbol hash mismatch (a damaged, crafted or reordered payload or "
                                     "header, or a decoder whose entropy parameters differ from the encoder's)")
            self._chain = chained
        if not torch.isfinite(x_hat).all():
            raise BitstreamError(f"{where}: decoded picture is not finite (corrupt payload)")
        x_hat = x_hat.clamp(0.0, 1.0)
        yuv, recon_hash = reconstruction(x_hat, self.output_size, self.bit_depth)
        self._ref = x_hat
        self._index += 1
        return DecodedFrame(x_hat, yuv, None if self.version < 2 else recon_hash == unit.recon_hash)

    def _decode(self, unit: FrameUnit, coder: IndexedCoder) -> Tensor:
        intra, pf = self.model.intra, self.model.pframe
        if unit.frame_type == FRAME_I:
            if len(unit.sections) != intra.num_streams:
                raise BitstreamError(f"frame {self._index} at byte offset {unit.offset}: expected "
                                     f"{intra.num_streams} payload sections, found {len(unit.sections)}")
            return intra.decompress(unit.sections, self.size, unit.quality, coder=coder)
        if self._ref is None:
            raise BitstreamError(f"frame {self._index} at byte offset {unit.offset}: P-frame without a reference")
        return pf.decompress(unit.sections, self._ref, unit.quality, zero_motion=bool(unit.modes & MODE_ZERO_MOTION),
                             use_mc=not unit.modes & MODE_NO_MC, skip=bool(unit.modes & MODE_SKIP), coder=coder)
