"""Image-codec evaluation (tools/eval_images.py): real bytes, exact decoding, SGA runs, bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from dvclic.errors import InputError
from dvclic.evaluation.images import evaluate_images

from .conftest import REPO, shared_file


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    """Two odd-sized real crops (71 x 45 and 45 x 71) of kodim23."""
    rgb = np.asarray(Image.open(shared_file("images/kodak/kodim23.png")).convert("RGB"))
    folder = tmp_path_factory.mktemp("pics")
    Image.fromarray(rgb[100:145, 200:271]).save(folder / "a.png")
    Image.fromarray(rgb[300:371, 400:445]).save(folder / "b.png")
    return folder


def test_runs_share_one_refinement_and_match_separate_runs(pictures, tiny_weights, one_torch_thread):
    torch.manual_seed(0)
    res = evaluate_images(str(tiny_weights), pictures, refine_steps=[0, 2, 4])
    assert res["count"] == 2 and res["names"] == ["a.png", "b.png"] and res["refine_steps"] == [0, 2, 4]
    assert [r["refine_steps"] for r in res["runs"]] == [0, 2, 4]
    for run in res["runs"]:
        assert [p["quality"] for p in run["points"]] == [0, 1]
        for p in run["points"]:
            assert p["bpp"] > 0 and 0 < p["psnr_rgb"] < 99 and 0 < p["ms_ssim"] <= 1
            assert p["rd_cost"] > p["bpp"]
    assert "bd_rate_psnr_rgb_vs_unrefined" not in res["runs"][0]
    assert set(res["runs"][2]["bd_rate_psnr_rgb_vs_unrefined"]) >= {"bd_rate", "reason"}

    torch.manual_seed(0)
    alone = evaluate_images(str(tiny_weights), pictures, refine_steps=[2])
    for a, b in zip(alone["runs"][0]["points"], res["runs"][1]["points"]):
        assert (a["bpp"], a["psnr_rgb"]) == (b["bpp"], b["psnr_rgb"])  # same bytes as a separate 2-step encode
    plain = evaluate_images(str(tiny_weights), pictures, limit=1, qualities=[1])
    assert plain["count"] == 1 and [r["refine_steps"] for r in plain["runs"]] == [0]


@pytest.mark.parametrize("kwargs, message", [
    ({"refine_steps": [-1]}, "refine_steps: must be >= 0"),
    ({"qualities": [5]}, "quality 5"),
    ({"limit": -1}, "limit"),
    ({"refine_precision": "float16"}, "refine_precision: must be one of float32, bfloat16"),
])
def test_bad_arguments(pictures, tiny_weights, kwargs, message):
    with pytest.raises(InputError, match=message):
        evaluate_images(str(tiny_weights), pictures, **kwargs)


def test_cli_json_and_bad_folder(pictures, tiny_weights, tmp_path, capsys):
    from dvclic.commands import main

    tool = [sys.executable, str(REPO / "tools" / "eval_images.py"), "--weights", str(tiny_weights)]
    ok = subprocess.run([*tool, "--images", str(pictures), "--qualities", "0", "--limit", "1", "--json"],
                        capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["runs"][0]["points"][0]["quality"] == 0
    assert main(["eval-images", "--weights", str(tiny_weights), "--images", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("error: image folder not found")


def test_compare_results_bd_rate(tmp_path, capsys):
    """``--compare`` in process (the subprocess path of the tool is covered above)."""
    from dvclic.commands import main

    def result(rates, psnrs, steps=0):
        return {"weights": "w", "intra_codec": "c", "count": 1,
                "runs": [{"refine_steps": steps, "points": [{"bpp": r, "psnr_rgb": d} for r, d in zip(rates, psnrs)]}]}

    anchor = result([0.2, 0.4, 0.8, 1.6], [28.0, 31.0, 34.0, 37.0])
    half = result([0.1, 0.2, 0.4, 0.8], [28.0, 31.0, 34.0, 37.0])  # same quality at half the rate
    paths = []
    for name, res in [("a", anchor), ("b", half)]:
        paths.append(tmp_path / f"{name}.json")
        paths[-1].write_text(json.dumps(res))
    assert main(["eval-images", "--compare", *map(str, paths), "--json"]) == 0
    row = json.loads(capsys.readouterr().out)["rows"][0]
    assert row["bd_rate_psnr_rgb"]["bd_rate"] == pytest.approx(-50.0, abs=1e-6) and row["result"] == str(paths[1])
    refined_only = tmp_path / "r.json"
    refined_only.write_text(json.dumps(result([0.2, 0.4], [28.0, 31.0], steps=5)))
    assert main(["eval-images", "--compare", str(refined_only), str(paths[1])]) == 2
    assert capsys.readouterr().err.strip() == "error: the anchor result has no unrefined run (refine_steps 0)"
    junk = tmp_path / "junk.json"
    junk.write_text("{")
    assert main(["eval-images", "--compare", str(paths[0]), str(junk)]) == 2
    assert "cannot read a JSON result" in capsys.readouterr().err
