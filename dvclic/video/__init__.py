"""Video input/output: readers (raw YUV, anything PyAV opens, streams on pipes), writers, padding.

Frames travel as :class:`dvclic.color.YUVFrame` (integer YUV 4:2:0); conversion to RGB tensors is
done by :mod:`dvclic.color` only.
"""

from .pipe import PipeSource, Y4MPipeWriter
from .padding import crop_to, pad_to_multiple, padded_size
from .readers import open_video, parse_fps
from .source import VideoInfo, VideoSource, pix_fmt_for_bit_depth
from .writers import SUPPORTED_OUTPUTS, VideoWriter, check_video_output, open_writer

__all__ = [
    "PipeSource",
    "SUPPORTED_OUTPUTS",
    "VideoInfo",
    "VideoSource",
    "VideoWriter",
    "Y4MPipeWriter",
    "check_video_output",
    "crop_to",
    "open_video",
    "open_writer",
    "pad_to_multiple",
    "padded_size",
    "parse_fps",
    "pix_fmt_for_bit_depth",
]
