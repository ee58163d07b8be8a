"""Dataset manifests: every shipped one loads; file problems are all reported, before any work."""

from __future__ import annotations

from pathlib import Path

import pytest

from dvclic.evaluation.manifest import ManifestError, load_manifest, manifest_from_dict, resolve_manifest
from dvclic.evaluation.plan import EvalOptions
from dvclic.evaluation.runner import evaluate

REPO = Path(__file__).resolve().parents[1]
MANIFESTS = sorted((REPO / "configs" / "datasets").glob("*.yaml"))
SHARED_VIDEO = REPO.parent / "shared" / "data" / "video"


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.stem)
def test_shipped_manifests_load(path: Path) -> None:
    manifest = load_manifest(path)
    assert manifest.sequences
    for seq in manifest.sequences:
        assert f"{seq.width}x{seq.height}" in seq.file
        assert seq.frames >= 1 and seq.bit_depth in (8, 10)


def test_shipped_manifest_contents() -> None:
    names = {p.stem: load_manifest(p) for p in MANIFESTS}
    assert {"uvg", "hevc_b", "hevc_c", "hevc_d", "hevc_e", "dev"} <= set(names)
    uvg = names["uvg"]
    assert [s.name for s in uvg.sequences] == ["Beauty", "Bosphorus", "HoneyBee", "Jockey", "ReadySteadyGo",
                                               "ShakeNDry", "YachtRide"]
    assert {s.frames for s in uvg.sequences if s.name != "ShakeNDry"} == {600}
    assert len(names["hevc_b"].sequences) == 5 and len(names["hevc_e"].sequences) == 3


def test_dev_manifest_matches_the_shared_files() -> None:
    if not SHARED_VIDEO.is_dir():
        pytest.skip("shared video folder not available")
    resolved = resolve_manifest(load_manifest(REPO / "configs" / "datasets" / "dev.yaml"), SHARED_VIDEO)
    assert len(resolved) == 7


def _manifest(**override) -> dict:
    seq = {"name": "clip", "class": "test", "file": "clip_16x8_25.yuv", "width": 16, "height": 8, "fps": 25,
           "frames": 3, "bit_depth": 8}
    seq.update(override)
    return {"name": "t", "sequences": [seq]}


def test_unknown_keys_are_errors() -> None:
    with pytest.raises(ManifestError, match=r"unknown keys \['colour'\]"):
        manifest_from_dict(_manifest(colour="bt709"))
    with pytest.raises(ManifestError, match=r"unknown keys \['version'\]"):
        manifest_from_dict({**_manifest(), "version": 2})
    with pytest.raises(ManifestError, match="bit_depth must be 8 or 10"):
        manifest_from_dict(_manifest(bit_depth=12))


def test_all_file_problems_reported_at_once(tmp_path: Path) -> None:
    raw = {"name": "t", "sequences": [
        {"name": "ok", "class": "c", "file": "ok.yuv", "width": 16, "height": 8, "fps": 25, "frames": 2, "bit_depth": 8},
        {"name": "gone", "class": "c", "file": "gone.yuv", "width": 16, "height": 8, "fps": 25, "frames": 2,
         "bit_depth": 8},
        {"name": "short", "class": "c", "file": "short.yuv", "width": 16, "height": 8, "fps": 25, "frames": 2,
         "bit_depth": 8},
        {"name": "ragged", "class": "c", "file": "ragged.yuv", "width": 16, "height": 8, "fps": 25, "frames": 2,
         "bit_depth": 8},
    ]}
    frame = 16 * 8 * 3 // 2
    (tmp_path / "ok.yuv").write_bytes(bytes(2 * frame))
    (tmp_path / "short.yuv").write_bytes(bytes(frame))
    (tmp_path / "ragged.yuv").write_bytes(bytes(2 * frame + 5))
    manifest = manifest_from_dict(raw, "t.yaml")
    with pytest.raises(ManifestError) as info:
        resolve_manifest(manifest, tmp_path)
    message = str(info.value)
    assert "3 problem(s)" in message and "\n" not in message
    assert "gone: missing file" in message
    assert f"short: {tmp_path / 'short.yuv'} is {frame} bytes (1 frames), expected {2 * frame} bytes" in message
    assert "ragged:" in message and "not a whole number of frames" in message
    # --frames 1 needs only one whole frame of each file: the short file is then fine
    with pytest.raises(ManifestError, match="2 problem") as info:
        resolve_manifest(manifest, tmp_path, frames=1)
    assert "short" not in str(info.value)


def test_evaluate_stops_before_any_work(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text(
        "name: t\nsequences:\n  - {name: a, class: c, file: a_16x8_25.yuv, width: 16, height: 8, fps: 25, "
        "frames: 2, bit_depth: 8}\n")
    out = tmp_path / "out"
    with pytest.raises(ManifestError, match="missing file"):
        # weights are resolved after the files are checked, so a missing default model is never reached
        evaluate(EvalOptions(dataset=str(tmp_path / "m.yaml"), root=str(tmp_path), out=str(out)))
    assert not out.exists()
