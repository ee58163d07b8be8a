"""dvclic: learned video codec toolkit (DVC-style P-frames, swappable learned image codecs)."""

__version__ = "0.1.0"
