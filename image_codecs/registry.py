"""Registry of image codecs by stable name.

Names are written into bitstreams and checkpoints, so a name never changes
meaning: add new names, never repurpose old ones. The table is static (no
import-time registration side effects); ``build_codec`` is the only factory.
"""

from __future__ import annotations

from typing import Any

from .base import ImageCodec
from .edic import EDICCodec
from .hyperprior import HyperpriorCodec
from .msp import MSPCodec
from .shallow import Shallow2LayerCodec, ShallowJPEGCodec


class UnknownNameError(KeyError):
    """A registry lookup failed; the message lists the valid names."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


def _codec_table() -> dict[str, type[ImageCodec]]:
    table: dict[str, type[ImageCodec]] = {
        "hyperprior": HyperpriorCodec,
        "edic": EDICCodec,
        "msp": MSPCodec,
        "shallow-jpeg": ShallowJPEGCodec,
        "shallow-2layer": Shallow2LayerCodec,
    }
    return table


def codec_names() -> list[str]:
    return sorted(_codec_table())


def codec_class(name: str) -> type[ImageCodec]:
    table = _codec_table()
    if name not in table:
        raise UnknownNameError(f"unknown image codec {name!r}; valid names: {', '.join(sorted(table))}")
    return table[name]


def build_codec(name: str, **kwargs: Any) -> ImageCodec:
    """Build a registered codec from keyword arguments (e.g. in_channels, N, M)."""
    return codec_class(name)(**kwargs)
