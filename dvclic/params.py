"""Coding parameters: one frozen, validated object for everything a user chooses per encode.

:class:`CodingParams` is checked once, when it is made (values that need no model) and when
:meth:`CodingParams.for_model` fills in the model's defaults and checks the model's limits.
Errors are :class:`ParameterError` with library wording (``quality: must be in 0..3, got 7``)
and the parameter's name in ``.name``, so each command line can say it with its own flag.

The intra-period rule (``>= 1``, or ``-1`` for the first frame only) is the bitstream's
(:func:`dvclic.bitstream.valid_intra_period`); everything else checks through this module.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from image_codecs.refine import PRECISIONS as REFINE_PRECISIONS

from .bitstream import valid_intra_period
from .errors import InputError
from .rdo import DEFAULT_MODES, ModeSet


class ParameterError(InputError):
    """A coding parameter is out of range; ``name`` is the parameter (``quality``, ``intra_period``...)."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"{name}: {problem}")
        self.name = name
        self.problem = problem


def default_quality(num_qualities: int) -> int:
    """The quality used when none is given: the middle one (rounded down)."""
    return (num_qualities - 1) // 2


def check_quality(quality: int, num_qualities: int) -> int:
    """``quality`` if it is in ``0..num_qualities-1``, else :class:`ParameterError`."""
    if not 0 <= quality < num_qualities:
        raise ParameterError("quality", f"must be in 0..{num_qualities - 1}, got {quality}")
    return quality


def check_refine_precision(precision: str) -> str:
    """``precision`` if it is one of ``image_codecs.refine.PRECISIONS``, else :class:`ParameterError`."""
    if precision not in REFINE_PRECISIONS:
        raise ParameterError("refine_precision", f"must be one of {', '.join(REFINE_PRECISIONS)}, got {precision!r}")
    return precision


@dataclass(frozen=True)
class CodingParams:
    """What one encode uses. ``None`` means the model's default (see :meth:`for_model`).

    quality: quality index; intra_period: I-frame every N frames, -1: first frame only;
    frames: code at most this many frames (None: all); refine_steps: encode-time SGA/LOF steps
    for I-frames and residuals (0: off); modes: the P-frame candidates (``dvclic.rdo.MODE_NAMES``,
    comma list); profile: the entropy-model profile of codecs that have one (``msp``: the number
    of decoding passes; None: the codec's default); intra_offset: the I-frames that the intra
    period places are coded this many qualities higher than ``quality`` (capped at the highest),
    a quality offset by GOP position (the P-frames predict from a better reference; None: the
    model config's); refine_precision: ``"float32"`` or ``"bfloat16"``, the precision of the
    refinement steps (an encoder speed setting; the stream and the decoder are unchanged, see
    ``image_codecs.refine``).
    """

    quality: int | None = None
    intra_period: int | None = None
    frames: int | None = None
    refine_steps: int = 0
    modes: str = DEFAULT_MODES
    profile: int | None = None
    intra_offset: int | None = None
    refine_precision: str = "float32"

    def __post_init__(self) -> None:
        if self.quality is not None and self.quality < 0:
            raise ParameterError("quality", f"must be >= 0, got {self.quality}")
        if self.intra_period is not None and not valid_intra_period(self.intra_period):
            raise ParameterError("intra_period", f"must be >= 1 or -1, got {self.intra_period}")
        if self.frames is not None and self.frames < 1:
            raise ParameterError("frames", f"must be >= 1, got {self.frames}")
        if self.refine_steps < 0:
            raise ParameterError("refine_steps", f"must be >= 0, got {self.refine_steps}")
        check_refine_precision(self.refine_precision)
        if self.intra_offset is not None and self.intra_offset < 0:
            raise ParameterError("intra_offset", f"must be >= 0, got {self.intra_offset}")
        if self.profile is not None and self.profile < 1:
            raise ParameterError("profile", f"must be >= 1, got {self.profile}")
        try:
            ModeSet.parse(self.modes)
        except ValueError as exc:
            raise ParameterError("modes", str(exc)) from None

    @property
    def mode_set(self) -> ModeSet:
        return ModeSet.parse(self.modes)

    def for_model(self, num_qualities: int, intra_period: int, intra_offset: int = 0) -> CodingParams:
        """These parameters with the model's defaults filled in (``quality``: the middle one,
        ``intra_period`` and ``intra_offset``: the model config's) and checked against its
        ``num_qualities``."""
        quality = default_quality(num_qualities) if self.quality is None else self.quality
        return replace(self, quality=check_quality(quality, num_qualities),
                       intra_period=intra_period if self.intra_period is None else self.intra_period,
                       intra_offset=intra_offset if self.intra_offset is None else self.intra_offset)
