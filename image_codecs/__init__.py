"""Learned image codecs with a common contract (see ``base.ImageCodec``)."""

from .base import CodecOutput, CompressedImage, EntropyTablesNotBuiltError, ImageCodec
from .entropy.coders import CdfTables, CorruptStreamError, IndexedCoder, LegacyRans, SafeAns, StreamDecoder
from .registry import UnknownNameError, build_codec, codec_class, codec_names

__all__ = [
    "CdfTables",
    "CodecOutput",
    "CompressedImage",
    "CorruptStreamError",
    "EntropyTablesNotBuiltError",
    "ImageCodec",
    "IndexedCoder",
    "LegacyRans",
    "SafeAns",
    "StreamDecoder",
    "UnknownNameError",
    "build_codec",
    "codec_class",
    "codec_names",
]
