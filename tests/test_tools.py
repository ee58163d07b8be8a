"""Encode/decode through the tools' entry points on real files, including bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from dvclic.cli import decode_main, encode_main
from dvclic.color import YUVFrame
from dvclic.video import open_video
from dvclic.video.raw_yuv import frame_to_bytes

from .conftest import REPO, shared_file

CISCO = "video/CiscoVT2people_320x192_12.yuv"


def run_json(main, argv, capsys) -> dict:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def encode_decode(src, tmp_path, weights, capsys, *extra):
    dvc, rec, out = tmp_path / "a.dvc", tmp_path / "rec.y4m", tmp_path / "dec.y4m"
    enc = run_json(encode_main, [str(src), "-o", str(dvc), "--weights", str(weights), "--recon", str(rec),
                                 "--device", "cpu", "--json", *extra], capsys)
    dec = run_json(decode_main, [str(dvc), "-o", str(out), "--weights", str(weights), "--device", "cpu",
                                 "--json"], capsys)
    return enc, dec, dvc, rec.read_bytes(), out.read_bytes()


def test_clip_round_trip_decoder_equals_encoder(tmp_path, tiny_weights, capsys):
    enc, dec, dvc, rec, out = encode_decode(shared_file(CISCO), tmp_path, tiny_weights, capsys,
                                            "--frames", "3", "--intra-period", "2")
    assert out == rec  # bit-exact: the decoder reproduces the encoder's reconstruction
    assert enc["frame_types"] == dec["frame_types"] == "IPI"
    assert enc["bytes"] == dec["bytes"] == dvc.stat().st_size
    assert enc["bpp"] == pytest.approx(dvc.stat().st_size * 8 / (320 * 192 * 3), abs=1e-6)  # JSON: 6 decimals
    for key in ("frames", "width", "height", "bytes", "bpp", "frame_types", "psnr_rgb", "psnr_yuv", "encode_fps"):
        assert key in enc
    assert "decode_fps" in dec and (enc["width"], enc["height"], enc["frames"]) == (320, 192, 3)


@pytest.mark.parametrize("rel, frames", [
    ("containers/carphone_176x144_near_lossless.mp4", "2"),
    ("containers/tree_320x240_cinepak.avi", "2"),
    ("video/Sparks_480x270_30_10bit.yuv", "2"),
])
def test_container_and_10bit_inputs(tmp_path, tiny_weights, capsys, rel, frames):
    enc, dec, _, rec, out = encode_decode(shared_file(rel), tmp_path, tiny_weights, capsys, "--frames", frames)
    assert out == rec and enc["frames"] == int(frames)
    if "10bit" in rel:
        assert b"C420p10" in out[:80]


def _write_yuv(path: Path, frames: list[YUVFrame]) -> None:
    path.write_bytes(b"".join(frame_to_bytes(f) for f in frames))


@pytest.mark.parametrize("w, h", [(417, 239), (7, 5)])
def test_odd_and_tiny_sizes_single_frame(tmp_path, tiny_weights, capsys, w, h):
    with open_video(shared_file("video/calendar_720x576_25.yuv"), max_frames=1) as src:
        f = next(iter(src))
    cw, ch = (w + 1) // 2, (h + 1) // 2
    crop = YUVFrame(f.y[:h, :w].copy(), f.u[:ch, :cw].copy(), f.v[:ch, :cw].copy(), 8)
    src_path = tmp_path / f"crop_{w}x{h}_25.yuv"
    _write_yuv(src_path, [crop])
    enc, dec, _, rec, out = encode_decode(src_path, tmp_path, tiny_weights, capsys)
    assert out == rec and enc["frames"] == 1 and enc["frame_types"] == "I"
    assert (enc["width"], enc["height"]) == (w, h)


def test_user_errors_exit_2_without_output(tmp_path, tiny_weights, capsys):
    cisco = shared_file(CISCO)
    out = tmp_path / "x.dvc"
    assert encode_main([str(tmp_path / "missing.mp4"), "-o", str(out), "--weights", str(tiny_weights)]) == 2
    text = tmp_path / "notes.txt"
    text.write_text("not a video\n" * 50)
    assert encode_main([str(text), "-o", str(out), "--weights", str(tiny_weights)]) == 2
    bad_weights = tmp_path / "bad.pt"
    bad_weights.write_bytes(b"\x00" * 100)
    assert encode_main([str(cisco), "-o", str(out), "--weights", str(bad_weights), "--frames", "1"]) == 2
    assert encode_main([str(cisco), "-o", str(out), "--weights", str(tiny_weights), "--quality", "9"]) == 2
    assert not out.exists()
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("error:") == 4


def test_bad_bitstreams_exit_2_and_leave_no_output(tmp_path, tiny_weights, capsys):
    dvc = tmp_path / "a.dvc"
    assert encode_main([str(shared_file(CISCO)), "-o", str(dvc), "--weights", str(tiny_weights),
                        "--frames", "2", "--device", "cpu"]) == 0
    data = dvc.read_bytes()
    cases = {"trunc": data[: len(data) // 2], "flip": data[:60] + bytes([data[60] ^ 1]) + data[61:],
             "empty": b""}
    for name, blob in cases.items():
        bad = tmp_path / f"{name}.dvc"
        bad.write_bytes(blob)
        out = tmp_path / f"{name}.y4m"
        assert decode_main([str(bad), "-o", str(out), "--weights", str(tiny_weights), "--device", "cpu"]) == 2
        assert not out.exists()
    other = tmp_path / "other.pt"
    other.write_bytes(tiny_weights.read_bytes() + b"x")  # different hash
    assert decode_main([str(dvc), "-o", str(tmp_path / "o.y4m"), "--weights", str(other)]) == 2
    assert "do not match" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*.part"))


def test_cli_process_prints_one_line_on_truncated_file(tmp_path, tiny_weights):
    """The real tool process: exit code 2, a one-line message, no traceback, no output file."""
    dvc = tmp_path / "t.dvc"
    assert encode_main([str(shared_file(CISCO)), "-o", str(dvc), "--weights", str(tiny_weights),
                        "--frames", "1", "--device", "cpu"]) == 0
    dvc.write_bytes(dvc.read_bytes()[:-3])
    out = tmp_path / "t.y4m"
    proc = subprocess.run([sys.executable, str(REPO / "tools" / "decode.py"), str(dvc), "-o", str(out),
                           "--weights", str(tiny_weights), "--device", "cpu"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "truncated" in lines[0] and "Traceback" not in proc.stderr
    assert not out.exists()
