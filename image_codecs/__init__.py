"""Learned image codecs with a common contract (see ``base.ImageCodec``)."""

from .base import CodecOutput, CompressedImage, EntropyTablesNotBuiltError, ImageCodec
from .registry import UnknownNameError, build_codec, codec_class, codec_names

__all__ = [
    "CodecOutput",
    "CompressedImage",
    "EntropyTablesNotBuiltError",
    "ImageCodec",
    "UnknownNameError",
    "build_codec",
    "codec_class",
    "codec_names",
]
