"""Golden streams: committed .dvc files must decode to their recorded output hashes.

This guards against a torch, compressai or constriction upgrade (or a code change)
silently changing what a stored file decodes to. ``v1_sample3.dvc`` was written by
the first release (format version 1, compressai rANS, ``dvc-hyperprior.pt``);
``v2_sample3.dvc`` by the current encoder (format version 2, every P-frame mode
allowed, ``dvc-dis.pt``, encoded with one torch thread). Both: the first 3 frames of the bundled sample clip,
quality 1. The hashes are SHA-256 of the y4m file decoded with one torch thread
(the decoder's output may differ by 1 code value with another thread count; see
``tests/test_cross_env.py``).
"""

from __future__ import annotations

import hashlib

import pytest

from dvclic.api import decode_file

from .conftest import REPO

GOLDEN = REPO / "tests" / "data" / "golden"
EXPECTED = {
    "v1_sample3.dvc": "7253e52c477424dddefb98b23ca91e04c3a9ec04efbcc166cc7f849116bc1f74",
    "v2_sample3.dvc": "1a45246e4c0ddf7083a62d9b8fcb76d8608096e1880ee09199cb52f515279fd8",
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_golden_stream_decodes_to_its_recorded_hash(name, tmp_path, one_torch_thread):
    out = tmp_path / "out.y4m"
    report = decode_file(GOLDEN / name, out, device="cpu")
    assert report.frames == 3
    assert hashlib.sha256(out.read_bytes()).hexdigest() == EXPECTED[name]
    if name.startswith("v2"):
        assert report.summary()["exact"] is True
