"""Hostile-stream fuzzing of the decoder (``dvclic.fuzz``): the byte-level model, the case
generators, the outcome classifier, and the decoder itself against hostile, checksum-valid
variants of a real 3-frame stream: 150 in forked children, 10 through the CLI (``-m slow``:
10,000+)."""

from __future__ import annotations

import io
import itertools
import os
import signal
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest

from dvclic import fuzz
from dvclic.bitstream import FRAME_I, FRAME_P, MAGIC, BitstreamReader, _header_payload
from dvclic.errors import BitstreamError

FAST_CASES = 150
SLOW_CASES = 10_000
TIMEOUT = 60.0


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="session")
def sample_stream(tmp_path_factory) -> bytes:
    """The bundled sample's first 3 frames, encoded once with the shipped weights."""
    path = fuzz.encode_sample(tmp_path_factory.mktemp("fuzz") / "sample.dvc", frames=3)
    return path.read_bytes()


@pytest.fixture(scope="module")
def fork_decoder(sample_stream):
    with fuzz.ForkDecoder() as decoder:
        decoder.warm(sample_stream)
        yield decoder


@pytest.fixture(scope="module")
def truth(sample_stream, fork_decoder, tmp_path_factory) -> fuzz.Y4M:
    video, exact = fuzz.true_decode(sample_stream, decoder=fork_decoder, workdir=tmp_path_factory.mktemp("truth"))
    assert exact is True and len(video.frames) == 3
    return video


def _assert_contract_kept(report: fuzz.FuzzReport) -> None:
    print(f"\n{sum(report.counts.values())} cases in {report.seconds:.1f} s: {dict(report.counts)}")
    for case, outcome in report.failures:
        print(f"  {outcome.kind}: {case.name}: {outcome.detail} | {outcome.stderr.strip()[-300:]}")
    assert not report.failures, [(c.name, o.kind, o.detail) for c, o in report.failures]


# --------------------------------------------------------------------------- byte-level model
def test_stream_model_round_trips(sample_stream):
    s = fuzz.DvcStream.parse(sample_stream)
    assert s.to_bytes() == sample_stream == fuzz.fix_crcs(sample_stream)
    assert b"".join(piece for _, piece in s.segments()) == sample_stream
    header = BitstreamReader(io.BytesIO(sample_stream)).header
    assert s.fields().encode() == s.header == _header_payload(header)  # same layout as the writer
    assert s.fields() == fuzz.HeaderFields.from_header(header)
    units = list(BitstreamReader(io.BytesIO(sample_stream)))
    assert len(units) == len(s.frames) == s.end_count == 3
    for i, unit in enumerate(units):
        assert s.unit(i) == unit and fuzz.frame_payload(unit, s.version) == s.frames[i]


def test_noncanonical_varint_and_fix_crcs():
    assert fuzz.noncanonical_varint(0) == b"\x80\x00" and fuzz.noncanonical_varint(300, 2) == b"\xac\x82\x80\x00"
    s = fuzz.DvcStream(2, b"header", (b"frame",), 1)
    broken = s.to_bytes(header__crc=b"\0\0\0\0", frame0__crc=b"\0\0\0\0")
    with pytest.raises(BitstreamError):
        fuzz.DvcStream.parse(broken)
    assert fuzz.fix_crcs(broken) == s.to_bytes()
    assert fuzz.fix_crcs(broken[:-5]) == s.to_bytes()[:-5]  # no end unit
    assert fuzz.fix_crcs(broken[:-7]) == s.to_bytes()[:-9] + broken[-9:-7]  # a cut CRC stays as it is


def test_expected_order_follows_references():
    types = [FRAME_I, FRAME_P, FRAME_P]
    assert fuzz.expected_order([0, 1], types) == (0, 1)  # a prefix
    assert fuzz.expected_order([0, 0, 1, 2], types) == (0, 0, 1, 2)  # an I-frame repeated
    assert fuzz.expected_order([0, 1, 2, 0], types) == (0, 1, 2, 0)
    assert fuzz.expected_order([0, 2, 1], types) is None  # P-frames on the wrong reference
    assert fuzz.expected_order([1, 2], types) is None


def test_generators_are_deterministic_named_and_checksum_valid(sample_stream):
    cases = list(fuzz.hostile_variants(sample_stream))
    assert [c.name for c in cases] == [c.name for c in fuzz.hostile_variants(sample_stream)]
    names = [c.name for c in cases]
    assert len(set(names)) == len(names) and len(cases) > 2500
    assert all(c.data != sample_stream for c in cases)
    # hostile = checksum-valid: wherever the framing parses, every CRC matches, except in the
    # cases that edit a CRC or the framing (a shorter magic, a header length) on purpose
    framing = ["magic=b'DVCLI'", "header.length-1", "header.length+1", "header.length+4096"]
    assert [c.name for c in cases if ".crc=" not in c.name and fuzz.fix_crcs(c.data) != c.data] == framing
    one = fuzz.random_case(sample_stream, 7, 123)
    assert one == fuzz.random_case(sample_stream, 7, 123) != fuzz.random_case(sample_stream, 8, 123)
    assert fuzz.plan_cases(sample_stream, 50, seed=3) == fuzz.plan_cases(sample_stream, 50, seed=3)


# --------------------------------------------------------------------------- classification
class _Scripted:
    """A decoder that does what a test says: writes ``output`` bytes, ``leftover`` files, and
    returns a RawRun; under ``--strict`` it returns ``strict`` instead when given."""

    def __init__(self, rc, stderr="", output=None, stdout="", leftover=(), strict=None):
        self.run = fuzz.RawRun(rc, stdout, stderr, 0.01)
        self.output, self.leftover, self.strict = output, leftover, strict

    def __call__(self, case: Path, output: Path, *, strict: bool, timeout: float) -> fuzz.RawRun:
        if strict and self.strict is not None:
            return self.strict
        if self.output is not None:
            output.write_bytes(self.output)
        for name in self.leftover:
            (case.parent / name).write_bytes(b"")
        return self.run


Y4M_HEAD = b"YUV4MPEG2 W2 H2 F12:1 Ip A1:1 C420jpeg XYSCSS=420JPEG XCOLORRANGE=LIMITED\n"
FRAME_A, FRAME_B = b"FRAME\n" + bytes(6), b"FRAME\n" + bytes([1] * 6)


@pytest.mark.parametrize("decoder, kind", [
    (_Scripted(2, "error: corrupt frame 1\n"), "error"),
    (_Scripted(2, "error: corrupt\nerror: twice\n"), "traceback"),
    (_Scripted(2, "decode: error: usage\n"), "traceback"),
    (_Scripted(2, "error: corrupt\n", leftover=[".out.y4m.1.abcd0123.tmp"]), "leftover"),
    (_Scripted(2, "error: corrupt\n", output=Y4M_HEAD), "leftover"),
    (_Scripted(1, "Traceback (most recent call last):\n  ...\nValueError: x\n"), "traceback"),
    (_Scripted(0, "some warning\n", output=Y4M_HEAD + FRAME_A), "traceback"),
    (_Scripted(-signal.SIGSEGV), "crash"),
    (_Scripted(None), "hang"),
    (_Scripted(0, output=Y4M_HEAD + FRAME_A), "decoded"),
    (_Scripted(0), "wrong_video"),  # no output
    (_Scripted(0, output=Y4M_HEAD + FRAME_B), "wrong_video"),
    (_Scripted(0, output=Y4M_HEAD + FRAME_A + FRAME_A), "wrong_video"),
    (_Scripted(0, output=Y4M_HEAD.replace(b"W2", b"W4") + FRAME_A), "wrong_video"),
    (_Scripted(0, output=Y4M_HEAD + FRAME_B, stdout='{"exact": false}\n',
               strict=fuzz.RawRun(2, "", "error: differs (--strict)\n", 0.01)), "inexact"),
    (_Scripted(0, output=Y4M_HEAD + FRAME_B, stdout='{"exact": false}\n'), "wrong_video"),  # --strict decodes it
])
def test_outcomes_are_classified(tmp_path, decoder, kind):
    truth = fuzz.Y4M.parse(Y4M_HEAD + FRAME_A)
    outcome = fuzz.run_case(fuzz.Case("c", b"not a stream", (0,)), timeout=1, workdir=tmp_path, decoder=decoder,
                            truth=truth)
    assert outcome.kind == kind, outcome
    assert os.listdir(tmp_path) == []  # each case's folder is removed


def test_judge_reads_the_frame_rate_from_the_case(sample_stream):
    s = fuzz.DvcStream.parse(sample_stream)
    f = s.fields()
    truth = fuzz.Y4M.parse(Y4M_HEAD.replace(b"F12:1", f"F{f.fps_num}:{f.fps_den}".encode()) + FRAME_A)
    changed = fuzz.Case("fps", s.with_fields(replace(f, fps_num=25, fps_den=1)).to_bytes(), (0,))
    assert fuzz.judge(Y4M_HEAD.replace(b"F12:1", b"F25:1") + FRAME_A, changed, truth) is None
    assert "F" in fuzz.judge(Y4M_HEAD.replace(b"F12:1", f"F{f.fps_num}:{f.fps_den}".encode()) + FRAME_A, changed,
                             truth)
    assert fuzz.judge(Y4M_HEAD + FRAME_A, fuzz.Case("none", b"", None), truth) is not None


@pytest.mark.parametrize("behaviour, kind", [("segfault", "crash"), ("sleep", "hang"), ("raise", "traceback"),
                                              ("error", "error")])
def test_fork_runner_catches_what_the_child_does(tmp_path, monkeypatch, behaviour, kind):
    from dvclic import cli

    def child(argv, **kwargs):
        if behaviour == "segfault":
            os.kill(os.getpid(), signal.SIGSEGV)
        elif behaviour == "sleep":
            time.sleep(30)
        elif behaviour == "raise":
            raise RuntimeError("boom")
        print("error: refused", file=__import__("sys").stderr)
        return 2

    monkeypatch.setattr(cli, "decode_main", child)
    with fuzz.ForkDecoder() as decoder:
        outcome = fuzz.run_case(MAGIC, timeout=2, workdir=tmp_path, decoder=decoder)
    assert outcome.kind == kind, outcome
    assert outcome.seconds < 10


# --------------------------------------------------------------------------- the decoder, hostile streams
def test_fuzz_fast_subset(sample_stream, fork_decoder, truth, tmp_path):
    """A seeded sample of the generator's edge cases (byte fields at edge values) plus random mutants."""
    cases = fuzz.plan_cases(sample_stream, FAST_CASES, seed=0, random_share=0.2, exhaustive=False)
    report = fuzz.run_cases(cases, decoder=fork_decoder, truth=truth, workdir=tmp_path, timeout=TIMEOUT)
    _assert_contract_kept(report)
    assert report.counts["error"] > 0 and report.counts["decoded"] > 0


def test_valid_re_encodings_decode_to_their_true_video(sample_stream, fork_decoder, truth, tmp_path):
    """Edits that leave a valid stream -- re-encodings that change nothing, or dropping the last
    frame with both counts fixed -- decode to that stream's true video (refusing them would also
    keep the contract, but the format accepts them, so the decoder must get them right)."""
    # the encoder writes open-ended streams, so the neutral header edit is stating the count
    neutral = [c for c in fuzz.hostile_variants(sample_stream, exhaustive=False)
               if c.name in ("header.width=noncanonical", "header.counted", "frame1.length=noncanonical",
                             "frame0.recon_hash=flipped@0", "frames.dropped2,counts-fixed")]
    assert len(neutral) == 5
    outcomes = {c.name: fuzz.run_case(c, timeout=TIMEOUT, workdir=tmp_path, decoder=fork_decoder, truth=truth)
                for c in neutral}
    assert {name: o.kind for name, o in outcomes.items()} == {c.name: "decoded" for c in neutral}, outcomes
    assert outcomes["frame0.recon_hash=flipped@0"].exact is False  # decoded right, and says it cannot vouch
    assert outcomes["header.counted"].exact is True


CLI_CASES = ["header.width=16385", "frame0.section0.truncated1"]
SLOW_CLI_CASES = ["magic=b'DVCLIB'", "header.weights_sha256=flipped@0", "frame1.modes=8",
                  "frame2.symbols_hash=flipped@0", "end.count=2", "header.width=304"]


@pytest.mark.parametrize("names", [CLI_CASES, pytest.param(CLI_CASES + SLOW_CLI_CASES, marks=pytest.mark.slow)])
def test_cli_subprocess_cases(sample_stream, truth, tmp_path, names):
    """The real tool, one interpreter per case (two at a time: each spends seconds importing torch):
    hostile variants (more of them in the slow run), a random mutant, the unmutated stream, and
    --strict on a stream whose only damage is a reconstruction hash."""
    by_name = {c.name: c for c in fuzz.hostile_variants(sample_stream, exhaustive=False)}
    cases = [by_name[name] for name in names] + [fuzz.random_case(sample_stream, 0, 0),
                                                 fuzz.Case("unmutated", sample_stream, (0, 1, 2)),
                                                 by_name["frame0.recon_hash=flipped@0"]]
    strict = [False] * (len(cases) - 1) + [True]
    decoder = fuzz.SubprocessDecoder()
    with ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(lambda c, st: fuzz.run_case(c, timeout=120, workdir=tmp_path, decoder=decoder,
                                                             truth=truth, strict=st), cases, strict))
    print(f"\nCLI: {dict(Counter(o.kind for o in outcomes))}")
    bad = [(c.name, o.kind, o.detail, o.stderr[-300:]) for c, o in zip(cases, outcomes) if o.failed]
    assert not bad, bad
    assert outcomes[-2].kind == "decoded" and outcomes[-2].exact is True
    assert outcomes[-1].kind == "error" and "--strict" in outcomes[-1].stderr, outcomes[-1]


@pytest.mark.slow
def test_fuzz_slow(sample_stream, fork_decoder, truth, tmp_path):
    """Every generator case (every value of every frame byte) plus random mutants: >= 10,000 cases."""
    variants = list(fuzz.hostile_variants(sample_stream, exhaustive=True))
    randoms = (fuzz.random_case(sample_stream, 1, i) for i in range(max(SLOW_CASES - len(variants), 5000)))
    report = fuzz.run_cases(itertools.chain(variants, randoms), decoder=fork_decoder, truth=truth, workdir=tmp_path,
                            timeout=TIMEOUT)
    assert sum(report.counts.values()) >= SLOW_CASES
    _assert_contract_kept(report)
