"""The ``dvclic`` command: every subcommand has --help, and bad input exits 2 with one line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from dvclic.commands import SUBCOMMANDS, main

from .conftest import REPO


def _one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "error" in lines[0] and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("name", ["encode", "eval-images"])
def test_refine_precision_choices_are_the_library_precisions(name, capsys):
    """The parsers spell the choices out; they must stay the library's."""
    from image_codecs.refine import PRECISIONS

    assert main([name, "--help"]) == 0
    assert "--refine-precision {" + ",".join(PRECISIONS) + "}" in capsys.readouterr().out


@pytest.mark.parametrize("name", list(SUBCOMMANDS))
def test_every_subcommand_has_help(name, capsys):
    assert main([name, "--help"]) == 0
    assert capsys.readouterr().out.startswith(f"usage: dvclic {name}")


def test_top_level_usage_and_unknown_subcommands(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in SUBCOMMANDS)
    assert main([]) == 2 and "give a subcommand" in _one_error_line(capsys.readouterr().err)
    assert main(["transcode"]) == 2 and "unknown subcommand" in _one_error_line(capsys.readouterr().err)


def bad_inputs(tmp: str, weights: str) -> list[tuple[str, list[str], str]]:
    missing, junk = f"{tmp}/missing.mp4", f"{tmp}/junk.bin"
    return [
        ("encode", [missing, "-o", f"{tmp}/o.dvc", "--weights", weights], "not found"),
        ("encode", [junk, "-o", f"{tmp}/o.dvc", "--weights", weights], "cannot open"),
        ("encode", [str(REPO / "dvclic/samples/CiscoVT2people_320x192_12.mp4"), "-o", f"{tmp}/o.dvc",
                    "--weights", weights, "--quality", "7"], "--quality: must be in 0..1"),
        ("encode", ["x.mp4", "-o", f"{tmp}/o.dvc", "--intra-period", "0"], "--intra-period: must be >= 1 or -1"),
        ("encode", ["x.mp4", "-o", f"{tmp}/o.dvc", "--modes", "teleport"], "--modes"),
        ("encode", ["x.mp4", "-o", f"{tmp}/o.dvc", "--refine-precision", "fp8"], "--refine-precision"),
        ("encode", ["x.mp4"], "required"),
        ("encode", ["x.mp4", "-o", "-", "--recon", "-"], "cannot share standard output"),
        ("decode", [junk, "-o", f"{tmp}/o.y4m"], "not a .dvc file"),
        ("decode", [missing, "-o", f"{tmp}/o.y4m"], "not found"),
        ("decode", [junk, "-o", f"{tmp}/o.webp"], "unsupported output"),
        ("train", ["--config", missing, "--out", f"{tmp}/run"], "missing.mp4"),
        ("eval", ["--dataset", missing, "--root", tmp, "--out", f"{tmp}/e"], "missing.mp4"),
        ("eval-images", ["--images", f"{tmp}/none", "--weights", weights], "image folder not found"),
        ("eval-images", ["--compare", junk, junk], "cannot read a JSON result"),
        ("eval-images", ["--images", f"{tmp}/none", "--weights", weights, "--refine-precision", "fp8"],
         "--refine-precision"),
        ("bench", ["--codec", "no-such-codec", "--size", "64x64", "--device", "cpu"], "unknown image codec"),
        ("bench", ["--codec", "hyperprior", "--size", "64"], "expected WxH"),
        ("bench", ["--config", "configs/models/dvc-dis.yaml", "--size", "64x64", "--weights", junk,
                   "--device", "cpu"], "not a dvclic weights file"),
        ("inspect-motion", [missing, "--weights", weights], "not found"),
        ("inspect-motion", [missing, "--weights", junk], "not a dvclic weights file"),
        ("export-weights", [junk, "-o", f"{tmp}/w.pt"], "not a dvclic weights file"),
        ("export-weights", [weights, "-o", f"{tmp}/w.pt", "--model", "configs/models/dvc-dis.yaml"],
         "does not describe the networks"),
        ("pack-data", [missing, "-o", f"{tmp}/pack"], "missing.mp4"),
        ("pack-data", ["configs/train/dvc-dis-run4.yaml", "-o", f"{tmp}/pack", "--quality", "0"], "quality 1..100"),
        ("fuzz", ["--cases", "0"], "--cases must be >= 1"),
        ("fuzz", ["--stream", missing], "not found"),
    ]


def test_bad_input_exits_2_with_one_line(tmp_path, tiny_weights, capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    (tmp_path / "junk.bin").write_bytes(b"this is not a video, a stream, weights or JSON\n")
    for name, argv, expected in bad_inputs(str(tmp_path), str(tiny_weights)):
        rc = main([name, *argv])
        line = _one_error_line(capsys.readouterr().err)
        assert rc == 2 and expected in line, (name, argv, line)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk.bin"]  # nothing half-written


def test_console_entry_point_and_module_agree():
    run = subprocess.run([sys.executable, "-m", "dvclic", "decode", "--help"], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0 and run.stdout.startswith("usage: dvclic decode")
