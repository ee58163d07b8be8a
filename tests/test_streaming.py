"""Streaming: ``-`` is standard input/output for streams and y4m; nothing seeks; memory stays flat."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import av
import pytest

from .conftest import REPO

SAMPLE = REPO / "dvclic" / "samples" / "CiscoVT2people_320x192_12.mp4"


def dvclic(*args: str, stdin: bytes | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "dvclic", *args], input=stdin, capture_output=True, env=env,
                          timeout=timeout, cwd=REPO)


@pytest.fixture(scope="module")
def streams(tmp_path_factory, tiny_weights):
    """The sample's first 3 frames encoded to a file and to stdout, and the file decoded to y4m."""
    tmp = tmp_path_factory.mktemp("stream")
    args = ["--weights", str(tiny_weights), "--frames", "3", "--device", "cpu"]
    to_file = dvclic("encode", str(SAMPLE), "-o", str(tmp / "a.dvc"), *args)
    assert to_file.returncode == 0, to_file.stderr
    to_stdout = dvclic("encode", str(SAMPLE), "-o", "-", "--json", *args)
    assert to_stdout.returncode == 0, to_stdout.stderr
    decoded = dvclic("decode", str(tmp / "a.dvc"), "-o", str(tmp / "a.y4m"), "--weights", str(tiny_weights))
    assert decoded.returncode == 0, decoded.stderr
    return {"dir": tmp, "file": (tmp / "a.dvc").read_bytes(), "stdout": to_stdout.stdout,
            "summary": to_stdout.stderr.decode(), "y4m": (tmp / "a.y4m").read_bytes()}


def test_encoding_to_stdout_gives_the_bytes_of_a_file(streams):
    assert streams["stdout"] == streams["file"]
    summary = json.loads(streams["summary"].strip().splitlines()[-1])  # the summary goes to stderr
    assert summary["bytes"] == len(streams["file"]) and summary["frames"] == 3


def test_decoding_from_stdin_to_stdout_gives_the_frames_of_the_file(streams, tiny_weights):
    piped = dvclic("decode", "-", "-o", "-", "--weights", str(tiny_weights), stdin=streams["file"])
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout == streams["y4m"]
    with av.open(str(streams["dir"] / "a.y4m")) as c:  # y4m on stdout is a y4m any reader takes
        assert sum(1 for _ in c.decode(video=0)) == 3


def test_encoder_reads_y4m_from_stdin(streams, tiny_weights):
    """A y4m piped in is coded like the same y4m read from a file (same bytes)."""
    y4m = streams["dir"] / "a.y4m"
    args = ["--weights", str(tiny_weights), "--device", "cpu"]
    from_file = dvclic("encode", str(y4m), "-o", "-", *args)
    from_pipe = dvclic("encode", "-", "-o", "-", *args, stdin=streams["y4m"])
    assert from_file.returncode == 0 and from_pipe.returncode == 0, from_pipe.stderr
    assert from_pipe.stdout == from_file.stdout and from_pipe.stdout[:6] == b"DVCLIC"


@pytest.mark.parametrize("what, data", [("empty", b""), ("text", b"hello\n"), ("truncated", None)])
def test_bad_streams_on_stdin_exit_2_with_one_line(streams, tiny_weights, what, data, monkeypatch, capsys):
    from dvclic.commands import main

    for command in (["decode", "-", "-o", "-"], ["encode", "-", "-o", "-"]):
        payload = streams["file"][:100] if data is None else data
        stdin, stdout = io.TextIOWrapper(io.BytesIO(payload)), io.TextIOWrapper(io.BytesIO())
        monkeypatch.setattr(sys, "stdin", stdin)
        monkeypatch.setattr(sys, "stdout", stdout)
        rc = main([*command, "--weights", str(tiny_weights), "--device", "cpu"])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(err) == 1 and err[0].startswith("error: "), (command, err)
        assert stdout.buffer.getvalue() == b""


def _peak_rss_encode(tmp_path, weights, frames: int) -> int:
    """Peak RSS (KiB) of a child that encodes ``frames`` frames of a synthetic y4m from stdin."""
    import numpy as np

    w, h = 128, 64
    rng = np.random.default_rng(0)
    base = rng.integers(16, 235, size=(h * 3 // 2, w + frames), dtype=np.uint8)
    frame_bytes = [np.ascontiguousarray(base[:, i:i + w]).tobytes() for i in range(frames)]
    y4m = f"YUV4MPEG2 W{w} H{h} F25:1 Ip A1:1 C420jpeg\n".encode() + b"".join(b"FRAME\n" + f for f in frame_bytes)
    code = ("import resource, sys; from dvclic.commands import main; rc = main(sys.argv[1:]); "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr); sys.exit(rc)")
    run = subprocess.run([sys.executable, "-c", code, "encode", "-", "-o", str(tmp_path / f"{frames}.dvc"),
                          "--weights", str(weights), "--device", "cpu", "--modes", "mc,zero"],
                         input=y4m, capture_output=True, timeout=1800, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert run.returncode == 0, run.stderr
    return int(run.stderr.decode().strip().splitlines()[-1])


@pytest.mark.slow
def test_memory_stays_flat_in_the_video_length(tmp_path, tiny_weights):
    short, long = _peak_rss_encode(tmp_path, tiny_weights, 30), _peak_rss_encode(tmp_path, tiny_weights, 300)
    assert long <= 1.10 * short, (short, long)
