"""tools/bench.py on tiny sizes: valid JSON with the required keys, for an image codec (with the
mbt2018 comparison) and for a video model."""

from __future__ import annotations

import json

from dvclic.bench.cli import main

REQUIRED = {"encode_fps", "decode_fps", "decode_s", "encode_s", "kmac_per_pixel", "peak_mem_mb", "device", "size"}


def _last_json(capsys) -> dict:
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert captured.err.strip(), "the table goes to stderr with --json"
    return json.loads(lines[-1])


def test_image_codec_bench_with_compare(capsys) -> None:
    code = main(["--codec", "hyperprior", "--codec-args", "N=16,M=24", "--size", "64x64", "--device", "cpu",
                 "--compare", "mbt2018", "--warmup", "0", "--repeat", "1", "--threads", "1", "--json"])
    assert code == 0
    result = _last_json(capsys)
    assert REQUIRED | {"compare_decode_s", "decode_speedup"} <= set(result)
    assert result["size"] == {"height": 64, "width": 64} and result["device"] == "cpu"
    kmac = result["kmac_per_pixel"]
    assert {"encoder", "decoder", "synthesis", "analysis", "hyper_synthesis"} <= set(kmac)
    assert kmac["decoder"] == kmac["synthesis"] + kmac["hyper_synthesis"]
    split = result["decode_split_s"]
    assert abs(split["network"] + split["entropy_coding"] - result["decode_s"]) < 1e-9
    assert result["decode_speedup"] == result["compare_decode_s"] / result["decode_s"]
    assert result["weights"] == "random init" and result["peak_mem_mb"] > 0 and result["torch_threads"] == 1


def test_video_model_bench(capsys, tiny_weights) -> None:
    code = main(["--weights", str(tiny_weights), "--size", "64x64", "--device", "cpu", "--frames", "2",
                 "--warmup", "0", "--repeat", "1", "--threads", "1", "--json"])
    assert code == 0
    result = _last_json(capsys)
    assert REQUIRED <= set(result) and result["kind"] == "video-model"
    kmac = result["kmac_per_pixel"]
    assert {"encoder", "decoder", "estimator", "motion_compensation", "motion.synthesis",
            "residual.synthesis", "intra.synthesis"} <= set(kmac)
    assert set(result["encode_stages_s"]) == {"flow", "motion_coding", "motion_compensation", "residual_coding",
                                              "other"}


def test_user_errors_exit_2(capsys) -> None:
    assert main(["--codec", "no-such-codec", "--size", "64x64", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "valid names" in err and err.count("\n") == 1


def test_trained_intra_codec_of_a_weights_file(capsys, tiny_weights) -> None:
    code = main(["--codec", "intra", "--weights", str(tiny_weights), "--size", "64x64", "--device", "cpu",
                 "--warmup", "0", "--repeat", "1", "--threads", "1", "--json"])
    assert code == 0
    result = _last_json(capsys)
    assert result["kind"] == "image-codec" and result["weights"].endswith("its intra codec hyperprior")
    assert result["quality"] == 0  # (2 qualities - 1) // 2
    assert main(["--codec", "intra", "--size", "64x64", "--device", "cpu"]) == 2
    assert "--codec intra takes --weights" in capsys.readouterr().err
