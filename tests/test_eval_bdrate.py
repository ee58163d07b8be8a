"""BD-rate (pchip, bjontegaard package): identities, a known shift, and curves that do not allow it."""

from __future__ import annotations

import math

import pytest

from dvclic.evaluation.bdrate import bd_rate, bd_rate_table

CURVE = [(0.05, 32.1), (0.09, 34.0), (0.16, 35.8), (0.30, 37.5)]


def test_curve_against_itself_is_zero() -> None:
    result = bd_rate(CURVE, CURVE)
    assert result.value == pytest.approx(0.0, abs=1e-9)
    assert result.reason is None and result.overlap == pytest.approx(1.0)


def test_ten_percent_fewer_bits_is_minus_ten_percent() -> None:
    test = [(r * 0.9, d) for r, d in CURVE]
    assert bd_rate(CURVE, test).value == pytest.approx(-10.0, abs=0.5)
    assert bd_rate(test, CURVE).value == pytest.approx(100 / 0.9 - 100, abs=0.5)  # the other way round: +11.1%


def test_point_order_does_not_matter() -> None:
    test = [(r * 0.9, d) for r, d in reversed(CURVE)]
    assert bd_rate(list(reversed(CURVE)), test).value == pytest.approx(-10.0, abs=0.5)


@pytest.mark.parametrize(("test", "reason"), [
    ([(0.01, 20.0), (0.02, 21.0)], "do not overlap"),
    ([(0.1, 34.0)], "at least 2"),
    ([(0.1, 34.0), (0.05, 36.0)], "not monotonic"),
    ([(0.1, 34.0), (0.2, 34.0)], "equal PSNR"),
    ([(0.0, 34.0), (0.2, 36.0)], "non-positive rate"),
    ([(0.1, math.nan), (0.2, 36.0)], "non-finite"),
])
def test_unusable_curves_give_null_with_reason(test, reason) -> None:
    result = bd_rate(CURVE, test)
    assert result.value is None
    assert reason in result.reason
    assert result.to_dict()["bd_rate"] is None


def test_partial_overlap_is_flagged() -> None:
    test = [(r, d + 4.0) for r, d in CURVE]  # same rates, 4 dB better: overlap 1.4 dB of 9.4 dB
    result = bd_rate(CURVE, test)
    assert result.value is not None and result.value < 0
    assert "low overlap" in result.reason


def test_table_per_sequence_and_class_mean() -> None:
    def points(scale: float) -> list[dict]:
        return [{"bpp": r * scale, "psnr_rgb": d, "psnr_yuv": d + 3} for r, d in CURVE]

    sequences = {"a": {"dvc": points(0.9), "x265": points(1.0)},
                 "b": {"dvc": points(0.8), "x265": points(1.0)},
                 "c": {"dvc": [{"bpp": 0.01, "psnr_rgb": 10.0, "psnr_yuv": 12.0},
                               {"bpp": 0.02, "psnr_rgb": 11.0, "psnr_yuv": 13.0}], "x265": points(1.0)}}
    table = bd_rate_table(sequences, {"a": "A", "b": "A", "c": "C"}, ["dvc"], ["x265"])
    entry = table["dvc"]["x265"]
    assert entry["per_sequence"]["a"]["psnr_rgb"]["bd_rate"] == pytest.approx(-10.0, abs=0.5)
    assert entry["per_sequence"]["b"]["psnr_yuv"]["bd_rate"] == pytest.approx(-20.0, abs=0.5)
    assert entry["per_class"]["A"]["psnr_rgb"]["bd_rate"] == pytest.approx(-15.0, abs=0.5)
    assert entry["per_class"]["A"]["psnr_rgb"]["sequences"] == ["a", "b"]
    assert entry["per_sequence"]["c"]["psnr_rgb"]["bd_rate"] is None
    assert entry["per_class"]["C"]["psnr_rgb"] == {"bd_rate": None, "sequences": ["c"],
                                                   "reason": "no BD-rate for c"}
