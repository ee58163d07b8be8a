"""User-facing error types.

Every error a user can cause (a bad input file, a bad argument, a corrupt ``.dvc``
file, missing weights) is a :class:`DvclicError`. The command-line tools catch
``DvclicError``, print its message on one line and exit with status 2; anything
else is a bug and keeps its traceback. Messages therefore name the file and the
problem in a single line, without relying on a traceback for context.
"""

from __future__ import annotations


class DvclicError(Exception):
    """Base class of every user-facing error (CLI: one-line message, exit status 2)."""


class InputError(DvclicError):
    """A bad, missing or unsupported input video, output path or command-line argument."""


class BitstreamError(DvclicError):
    """A ``.dvc`` file that is truncated, corrupted, of an unknown version or otherwise unreadable."""


class WeightsError(DvclicError):
    """Model weights that are missing, unreadable or do not match what a bitstream names."""
