"""Tool outputs: pre-flight refusals, pid-named temporaries, stale-temporary cleanup, SIGTERM/SIGKILL."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import pytest

from dvclic.store import ModelStore
from dvclic.cli import EXIT_TERMINATED, decode_main, encode_main
from dvclic.errors import InputError
from dvclic.outputs import atomic_output, check_output, remove_stale_temps
from dvclic.video import VideoInfo, open_writer

from .conftest import REPO

SAMPLE = REPO / "dvclic" / "samples" / "CiscoVT2people_320x192_12.mp4"
TOOLS = REPO / "tools"


def _dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _listing(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


def _one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


@pytest.fixture
def no_work(monkeypatch):
    """Fail loudly if encode/decode get past their pre-flight checks (weights are the first work)."""
    def refuse(*args, **kwargs):
        raise AssertionError("work started before the output was checked")

    monkeypatch.setattr(ModelStore, "for_config", refuse)
    monkeypatch.setattr(ModelStore, "for_stream", refuse)


# --------------------------------------------------------------------------- pre-flight


@pytest.mark.parametrize("how", ["same", "symlink", "hardlink"])
def test_encode_output_that_is_the_input_is_refused(tmp_path, capsys, no_work, how):
    src = tmp_path / "in.mp4"
    shutil.copyfile(SAMPLE, src)
    out = {"same": src, "symlink": tmp_path / "link.dvc", "hardlink": tmp_path / "hard.dvc"}[how]
    if how == "symlink":
        out.symlink_to(src)
    elif how == "hardlink":
        os.link(src, out)
    before = _listing(tmp_path)
    assert encode_main([str(src), "-o", str(out), "--weights", "w.pt"]) == 2
    assert "same file as the input" in _one_error_line(capsys.readouterr().err)
    assert src.read_bytes() == SAMPLE.read_bytes() and _listing(tmp_path) == before


@pytest.mark.parametrize("out", ["link.y4m", "hard.yuv", "a.dvc/"])
def test_decode_output_that_is_the_input_is_refused(tmp_path, capsys, no_work, out):
    dvc = tmp_path / "a.dvc"
    dvc.write_bytes(b"stands for a bitstream: the check comes before parsing")
    (tmp_path / "link.y4m").symlink_to(dvc)
    os.link(dvc, tmp_path / "hard.yuv")
    before = _listing(tmp_path)
    assert decode_main([str(dvc), "-o", f"{tmp_path}/{out}"]) == 2
    assert "same file as the input" in _one_error_line(capsys.readouterr().err)
    assert dvc.read_bytes().startswith(b"stands for") and _listing(tmp_path) == before


@pytest.mark.parametrize(("tool", "args", "message"), [
    ("encode", ["-o", "{d}"], "is a directory"),
    ("encode", ["-o", "{f}/out.dvc"], "is not a folder"),
    ("encode", ["-o", "{f}/sub/out.dvc"], "is not a folder"),
    ("encode", ["-o", "{t}/a.dvc", "--recon", "{t}/a.dvc"], "unsupported output type"),
    ("encode", ["-o", "{t}/a.y4m", "--recon", "{t}/a.y4m"], "is also the output"),
    ("encode", ["-o", "{t}/a.dvc", "--recon", "{d}"], "not empty"),
    ("encode", ["-o", "{t}/a.dvc", "--recon", "{f}/rec.y4m"], "is not a folder"),
    ("encode", ["-o", "{t}/a.dvc", "--recon", "{t}/no/rec.y4m"], "does not exist"),
    ("decode", ["-o", "{d}"], "not empty"),
    ("decode", ["-o", "{f}/"], "not a directory"),
    ("decode", ["-o", "{f}/dec.y4m"], "is not a folder"),
    ("decode", ["-o", "{t}/dec.avi"], "unsupported output type"),
])
def test_bad_output_places_exit_2_before_any_work(tmp_path, capsys, no_work, tool, args, message):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "old.png").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("a regular file\n")
    src = tmp_path / ("in.mp4" if tool == "encode" else "in.dvc")
    src.write_bytes(b"only opened after the output checks")
    argv = [a.format(d=tmp_path / "d", f=tmp_path / "notes.txt", t=tmp_path) for a in args]
    before = _listing(tmp_path)
    main = encode_main if tool == "encode" else decode_main
    assert main([str(src), *argv, "--weights", "w.pt"]) == 2
    assert message in _one_error_line(capsys.readouterr().err)
    assert _listing(tmp_path) == before and _listing(tmp_path / "d") == ["old.png"]


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="root writes into a 0o500 folder anyway; covered by the mocked checks below")
def test_unwritable_folder_exits_2(tmp_path, capsys, no_work):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        assert encode_main([str(SAMPLE), "-o", str(locked / "a.dvc"), "--weights", "w.pt"]) == 2
        assert "not writable" in _one_error_line(capsys.readouterr().err)
        assert _listing(locked) == []
    finally:
        locked.chmod(0o700)


def test_unwritable_folder_checks_run_as_any_user(tmp_path, monkeypatch):
    """os.access and the probe file are both consulted (as root, only mocks can make them fail)."""
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(InputError, match="not writable"):
        check_output(tmp_path / "a.dvc")
    monkeypatch.undo()

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("dvclic.outputs.tempfile.TemporaryFile", refuse)
    with pytest.raises(InputError, match=r"cannot write in folder .*Permission denied"):
        check_output(tmp_path / "sub" / "a.dvc")
    assert _listing(tmp_path) == []


# --------------------------------------------------------------------------- temporaries


def test_temp_names_carry_the_pid_and_stale_ones_are_removed(tmp_path):
    """A later write of the same output removes temporaries of dead processes, never live ones."""
    dead, live = _dead_pid(), os.getpid()
    stale = {
        "a.dvc": tmp_path / f".a.dvc.{dead}.0123abcd.tmp",
        "rec.y4m": tmp_path / f".rec.y4m.{dead}.0123abcd.tmp",
        "frames": tmp_path / f".frames.{dead}.0123abcd.tmp",  # a PNG-directory temporary
    }
    kept = [
        tmp_path / f".a.dvc.{live}.89abcdef.tmp",  # this (live) process
        tmp_path / f".rec.y4m.{live}.89abcdef.tmp",
        tmp_path / f".a.dvc.5.{dead}.0123abcd.tmp",  # the temporary of another output, "a.dvc.5"
        tmp_path / ".a.dvc.notes.tmp",  # not a name dvclic makes
    ]
    for path in [*stale.values(), *kept]:
        path.write_bytes(b"half written")
    stale["frames"].unlink()
    stale["frames"].mkdir()
    (stale["frames"] / "frame_00000.png").write_bytes(b"x")

    with atomic_output(tmp_path / "a.dvc") as temp:
        assert re.fullmatch(rf"\.a\.dvc\.{live}\.[0-9a-f]{{8}}\.tmp", temp.name)
        assert not stale["a.dvc"].exists()
        temp.write_bytes(b"stream")
    info = VideoInfo(width=16, height=16, fps=Fraction(25), bit_depth=8, pix_fmt="yuv420p", frame_count=None)
    open_writer(tmp_path / "rec.y4m", info).abort()
    open_writer(f"{tmp_path / 'frames'}/", info).abort()

    assert not any(p.exists() for p in stale.values())
    assert all(p.exists() for p in kept)
    assert (tmp_path / "a.dvc").read_bytes() == b"stream"
    assert remove_stale_temps(tmp_path / "a.dvc") == []  # the live process's file stays


def _tool(name: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # a shared 2-core machine
    return subprocess.Popen([sys.executable, str(TOOLS / name), *args, "--device", "cpu"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _wait_for_temps(proc: subprocess.Popen[str], folder: Path, names: list[str], timeout: float = 180) -> None:
    """Wait until ``proc`` has a temporary, named with its pid, for each output in ``names``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(list(folder.glob(f".{n}.{proc.pid}.*.tmp")) for n in names):
            return
        if proc.poll() is not None:
            pytest.fail(f"tool ended (rc {proc.returncode}) before its outputs were open: {proc.stderr.read()}")
        time.sleep(0.02)
    pytest.fail(f"no temporaries for {names} in {folder} after {timeout} s")


def _sample_bitstream(tmp_path: Path, weights: Path) -> Path:
    """All 12 frames of the bundled sample: decoding them takes long enough to be interrupted."""
    dvc = tmp_path / "sample.dvc"
    assert encode_main([str(SAMPLE), "-o", str(dvc), "--weights", str(weights), "--device", "cpu"]) == 0
    return dvc


def _signal_when_writing(proc: subprocess.Popen[str], folder: Path, names: list[str], sig: int) -> tuple[int, str]:
    """Wait until the tool has its temporaries for ``names`` in ``folder``, then send ``sig``."""
    try:
        _wait_for_temps(proc, folder, names)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
        return proc.returncode, err
    finally:
        proc.kill()


def _assert_terminated_cleanly(rc: int, err: str, folder: Path) -> None:
    assert rc == EXIT_TERMINATED
    assert [ln for ln in err.splitlines() if ln.startswith("error:")] == ["error: interrupted (SIGTERM)"]
    assert "Traceback" not in err and _listing(folder) == []


def test_sigterm_during_decode_removes_the_temporary(tmp_path, tiny_weights, capsys):
    dvc = _sample_bitstream(tmp_path, tiny_weights)
    capsys.readouterr()
    out = tmp_path / "out"
    out.mkdir()
    proc = _tool("decode.py", str(dvc), "-o", str(out / "dec.y4m"), "--weights", str(tiny_weights))
    _assert_terminated_cleanly(*_signal_when_writing(proc, out, ["dec.y4m"], signal.SIGTERM), out)


def test_sigterm_during_encode_removes_both_temporaries(tmp_path, tiny_weights):
    out = tmp_path / "out"
    out.mkdir()
    proc = _tool("encode.py", str(SAMPLE), "-o", str(out / "a.dvc"), "--recon", f"{out / 'frames'}/",
                 "--weights", str(tiny_weights))
    _assert_terminated_cleanly(*_signal_when_writing(proc, out, ["a.dvc", "frames"], signal.SIGTERM), out)


def test_sigkill_leaves_a_temporary_that_the_next_run_removes(tmp_path, tiny_weights, capsys):
    out = tmp_path / "out"
    out.mkdir()
    proc = _tool("encode.py", str(SAMPLE), "-o", str(out / "a.dvc"), "--weights", str(tiny_weights))
    rc, _ = _signal_when_writing(proc, out, ["a.dvc"], signal.SIGKILL)
    assert rc == -signal.SIGKILL
    (left,) = os.listdir(out)
    assert left.startswith(f".a.dvc.{proc.pid}.")  # nothing could clean up after SIGKILL ...
    assert encode_main([str(SAMPLE), "-o", str(out / "a.dvc"), "--weights", str(tiny_weights),
                        "--frames", "1", "--device", "cpu"]) == 0
    assert _listing(out) == ["a.dvc"]  # ... so the next run of the same output did
