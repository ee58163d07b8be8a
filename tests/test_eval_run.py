"""End to end: a 3-frame clip with the tiny model and the x264 anchor gives a complete results
file, a Markdown summary and a plot; a rerun reuses every cached point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dvclic.checkpoint import file_sha256
from dvclic.color import YUVFrame
from dvclic.evaluation.cli import main
from dvclic.evaluation.learned import first_difference
from dvclic.evaluation.plan import EvalOptions
from dvclic.evaluation.runner import evaluate
from dvclic.video import open_video
from dvclic.video.raw_yuv import frame_to_bytes

from .conftest import shared_file

POINT_KEYS = {"bpp", "bytes", "frames", "psnr_rgb", "psnr_yuv", "ms_ssim", "encode_fps", "decode_fps", "bits",
              "frame_types"}


@pytest.fixture(scope="module")
def clip_root(tmp_path_factory) -> Path:
    """The first 3 frames of a real clip, cropped to 192x176 (MS-SSIM needs > 160 px)."""
    src = shared_file("video/CiscoVT2people_320x192_12.yuv")
    root = tmp_path_factory.mktemp("clip")
    with open(root / "cisco_192x176_12.yuv", "wb") as out, open_video(src, max_frames=3) as frames:
        for f in frames:
            out.write(frame_to_bytes(YUVFrame(f.y[8:184, 64:256].copy(), f.u[4:92, 32:128].copy(),
                                              f.v[4:92, 32:128].copy())))
    (root / "m.yaml").write_text(
        "name: tiny-test\nsequences:\n  - {name: cisco, class: talking-heads, file: cisco_192x176_12.yuv, "
        "width: 192, height: 176, fps: 12, frames: 3, bit_depth: 8}\n")
    return root


def test_eval_writes_complete_results_and_resumes(clip_root: Path, tmp_path: Path, tiny_weights) -> None:
    out = tmp_path / "out"
    options = EvalOptions(dataset=str(clip_root / "m.yaml"), root=str(clip_root), out=str(out),
                          weights=str(tiny_weights), intra_period=2, qualities=(1,), anchors=("x264",),
                          crfs=(27, 37), device="cpu", threads=1, command=("tools/eval.py", "--test"))
    outcome = evaluate(options)
    results = json.loads((out / "results.json").read_text())
    assert set(results) == {"protocol", "sequences", "bd_rate", "plots"}

    proto = results["protocol"]
    for key in ("command", "dataset", "sequences", "frames", "intra_period", "picture_handling", "device",
                "colour_statement", "colour_conversion", "metrics", "dvclic", "anchors", "labels", "bd_rate",
                "versions", "measure_version"):
        assert key in proto, key
    assert proto["colour_statement"] == "BT.709 limited range, bilinear chroma upsampling"
    assert proto["picture_handling"]["mode"] == "pad" and "pad" in proto["picture_handling"]["statement"]
    assert proto["dvclic"]["test-tiny"]["weights_sha256"] == file_sha256(tiny_weights).hex()
    assert proto["versions"]["dvclic"] and proto["torch_threads_per_worker"] == 1
    x264 = proto["anchors"]["x264-medium"]
    assert x264["crfs"] == [27, 37]
    assert x264["options"]["27"]["x264-params"] == "keyint=2:min-keyint=2:scenecut=0:bframes=0:threads=1"
    assert x264["options"]["27"]["tune"] == "zerolatency"
    assert proto["sequences"]["cisco"]["frames"] == 3 and proto["sequences"]["cisco"]["coded_size"] == "192x176"

    labels = results["sequences"]["cisco"]
    assert set(labels) == {"test-tiny", "x264-medium"}
    (dvc,) = labels["test-tiny"]
    assert POINT_KEYS | {"quality"} <= set(dvc) and dvc["quality"] == 1
    # the P-frame is coded in whichever mode costs least (motion bits may be 0: zero motion)
    assert dvc["frame_types"] == "IPI" and dvc["bits"]["motion"] + dvc["bits"]["residual"] > 0
    assert dvc["bytes"] == (out / "bitstreams" / "cisco" / "test-tiny" / "q1.dvc").stat().st_size
    assert dvc["bpp"] == pytest.approx(dvc["bytes"] * 8 / (192 * 176 * 3))
    assert sum(dvc["bits"][k] for k in ("intra", "inter", "overhead")) == dvc["bytes"] * 8
    assert [p["crf"] for p in labels["x264-medium"]] == [27, 37]
    for p in labels["x264-medium"]:
        assert POINT_KEYS | {"crf"} <= set(p) and p["frame_types"] == "IPI"
    hi, lo = labels["x264-medium"]
    assert hi["bpp"] > lo["bpp"] and hi["psnr_rgb"] > lo["psnr_rgb"]

    bd = results["bd_rate"]["test-tiny"]["x264-medium"]
    seq = bd["per_sequence"]["cisco"]
    assert set(seq) == {"psnr_rgb", "psnr_yuv"}
    assert seq["psnr_rgb"]["bd_rate"] is None and "at least 2" in seq["psnr_rgb"]["reason"]  # one dvclic point
    assert bd["per_class"]["talking-heads"]["psnr_rgb"]["bd_rate"] is None

    png = out / results["plots"]["talking-heads"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "results.md").read_text() == outcome.markdown
    assert "| cisco | talking-heads |" in outcome.markdown
    assert not (out / "work").exists()

    again = evaluate(options)
    assert again.results["protocol"]["run"]["points_reused_from_cache"] == 3
    assert again.results["sequences"] == results["sequences"]


def test_cli_user_errors_are_one_line_exit_2(clip_root: Path, tmp_path: Path, capsys) -> None:
    code = main(["--dataset", str(clip_root / "m.yaml"), "--root", str(tmp_path), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and "missing file" in err
    code = main(["--dataset", str(clip_root / "m.yaml"), "--root", str(clip_root), "--anchors", "x266",
                 "--out", str(tmp_path / "o")])
    assert code == 2 and "unknown anchor 'x266'" in capsys.readouterr().err


def test_first_difference_names_the_frame(tmp_path: Path) -> None:
    a, b = tmp_path / "a.yuv", tmp_path / "b.yuv"
    a.write_bytes(bytes(30))
    b.write_bytes(bytes(30))
    assert first_difference(a, b, 10) is None
    b.write_bytes(bytes(15) + b"\x01" + bytes(14))
    assert first_difference(a, b, 10) == 1


def test_cache_reuses_a_point_only_under_the_same_key(tmp_path: Path) -> None:
    from dvclic.evaluation.cache import cache_path, load_point, save_point
    from dvclic.evaluation.measure import FrameMetrics, RDPoint

    point = RDPoint.from_frames([FrameMetrics(30.0, 33.0, 0.95), FrameMetrics(32.0, 35.0, 0.97)], quality=2, crf=None,
                                width=16, height=8, bytes=100, encode_fps=1.0, decode_fps=2.0,
                                bits={"intra": 400, "motion": 100, "residual": 200, "inter": 300, "overhead": 100},
                                frame_types="IP")
    path = cache_path(tmp_path, "seq/1", "dvc hyperprior", "q2")
    key = {"weights_sha256": "ab", "intra_period": 12, "frames": 2}
    save_point(path, key, point)
    assert path.parent.name == "dvc_hyperprior" and path.parent.parent.name == "seq_1"
    assert load_point(path, dict(key)) == point
    assert load_point(path, {**key, "intra_period": 32}) is None
    assert load_point(tmp_path / "absent.json", key) is None
    assert point.psnr_rgb == 31.0 and point.bpp == 100 * 8 / (16 * 8 * 2)


def test_crop_keeps_the_largest_multiple() -> None:
    from dvclic.evaluation.sources import crop_size

    assert crop_size(1080, 1920, 64) == (1024, 1920)
    assert crop_size(240, 416, 64) == (192, 384)
