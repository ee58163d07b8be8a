"""dvclic.video: raw YUV and PyAV readers, atomic writers, padding."""

from __future__ import annotations

import dataclasses
import gc
import os
import re
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

from dvclic.color import YUVFrame, chroma_shape, yuv420_to_rgb
from dvclic.errors import DvclicError, InputError
from dvclic.video import (
    VideoInfo,
    crop_to,
    open_video,
    open_writer,
    pad_to_multiple,
    padded_size,
    parse_fps,
)
from dvclic.video.raw_yuv import frame_to_bytes, parse_yuv_name

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CISCO = DATA / "video" / "CiscoVT2people_320x192_12.yuv"  # 8-bit, 9 frames
SPARKS = DATA / "video" / "Sparks_480x270_30_10bit.yuv"  # 10-bit, 5 frames
CARPHONE = DATA / "containers" / "carphone_176x144_near_lossless.mp4"  # 120 frames
VTEST = DATA / "containers" / "vtest_768x576_msmpeg4.avi"  # 795 frames
TREE = DATA / "containers" / "tree_320x240_cinepak.avi"  # 68 frames, RGB (Cinepak)


def needs(*paths: Path) -> pytest.MarkDecorator:
    missing = [p.name for p in paths if not p.exists()]
    return pytest.mark.skipif(bool(missing), reason=f"needs ../shared/data files: {', '.join(missing)}")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def read_all(path: Path, **kwargs) -> tuple[VideoInfo, list[YUVFrame]]:
    with open_video(path, **kwargs) as source:
        return source.info, list(source)


def crop_frame(frame: YUVFrame, height: int, width: int) -> YUVFrame:
    ch, cw = chroma_shape(height, width)
    return YUVFrame(
        y=frame.y[:height, :width].copy(),
        u=frame.u[:ch, :cw].copy(),
        v=frame.v[:ch, :cw].copy(),
        bit_depth=frame.bit_depth,
    )


def assert_same_frames(expected: list[YUVFrame], actual: list[YUVFrame]) -> None:
    assert len(actual) == len(expected)
    for index, (a, b) in enumerate(zip(expected, actual)):
        assert a.bit_depth == b.bit_depth, index
        for name, pa, pb in zip("yuv", a.planes, b.planes):
            assert pa.dtype == pb.dtype, (index, name)
            assert np.array_equal(pa, pb), (index, name)


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(peak**2 / mse)


# --------------------------------------------------------------------------- raw YUV reader


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("BasketballPass_416x240_50.yuv", (416, 240, Fraction(50), None)),
        ("Sparks_480x270_30_10bit.yuv", (480, 270, Fraction(30), 10)),
        ("Beauty_1920x1080_120fps_420_8bit_YUV.yuv", (1920, 1080, Fraction(120), 8)),
        ("Bosphorus_1920x1080_120fps_420_10bit_YUV.yuv", (1920, 1080, Fraction(120), 10)),
        ("clip_352x288.yuv", (352, 288, None, None)),
        ("foo_29.97.yuv", (None, None, None, None)),
        ("Kimono_1920x1080_24.yuv", (1920, 1080, Fraction(24), None)),
        ("mobile_352x288_29.97.yuv", (352, 288, Fraction(2997, 100), None)),
    ],
)
def test_parse_yuv_name(name, expected):
    g = parse_yuv_name(name)
    assert (g.width, g.height, g.fps, g.bit_depth) == expected


@needs(CISCO)
def test_raw_8bit_geometry_from_name():
    info, frames = read_all(CISCO)
    assert info == VideoInfo(320, 192, Fraction(12), 8, "yuv420p", 9)
    assert len(frames) == 9
    assert frames[0].y.shape == (192, 320) and frames[0].u.shape == (96, 160)
    assert frames[0].y.dtype == np.uint8
    frame_bytes = 320 * 192 * 3 // 2
    with open(CISCO, "rb") as f:
        f.seek(4 * frame_bytes)
        raw = np.frombuffer(f.read(frame_bytes), np.uint8)
    assert np.array_equal(frames[4].y.ravel(), raw[: 320 * 192])
    assert np.array_equal(frames[4].v.ravel(), raw[320 * 192 + 160 * 96 :])


@needs(SPARKS)
def test_raw_10bit_geometry_from_name():
    info, frames = read_all(SPARKS)
    assert info == VideoInfo(480, 270, Fraction(30), 10, "yuv420p10le", 5)
    assert len(frames) == 5
    for frame in frames:
        assert frame.bit_depth == 10 and frame.y.dtype == np.uint16
        assert frame.u.shape == (135, 240)
        assert max(int(p.max()) for p in frame.planes) < 1024
    assert int(frames[0].y.max()) > 255  # really uses the 10-bit range
    raw = np.fromfile(SPARKS, dtype="<u2", count=480 * 270)
    assert np.array_equal(frames[0].y.ravel(), raw)


@needs(CISCO, SPARKS)
def test_raw_explicit_arguments_override_the_name():
    # 640x96 frames have the same byte size as 320x192 ones.
    info, frames = read_all(CISCO, width=640, height=96, fps="30000/1001", max_frames=2)
    assert (info.width, info.height, info.fps, info.frame_count) == (640, 96, Fraction(30000, 1001), 2)
    assert len(frames) == 2 and frames[0].y.shape == (96, 640)
    # Reading the 10-bit file as 8-bit: twice as many (meaningless) frames, but a valid geometry.
    info, _ = read_all(SPARKS, bit_depth=8, max_frames=1)
    assert info.bit_depth == 8 and info.pix_fmt == "yuv420p"
    with open_video(SPARKS, bit_depth=8) as source:
        assert source.info.frame_count == 10


@needs(CISCO)
def test_raw_max_frames_and_reiteration():
    with open_video(CISCO, max_frames=4) as source:
        assert source.info.frame_count == 4
        first = list(source)
        second = list(source)
    assert len(first) == 4
    assert_same_frames(first, second)


@needs(CISCO)
def test_raw_size_mismatch_is_an_input_error():
    with pytest.raises(InputError, match=r"829440 bytes is not a whole number of 320x190"):
        open_video(CISCO, width=320, height=190)


def test_raw_file_not_a_whole_number_of_frames(tmp_path):
    path = tmp_path / "Foo_16x16_30.yuv"
    path.write_bytes(bytes(384 * 2 + 1))
    with pytest.raises(InputError, match=r"Foo_16x16_30\.yuv.*769 bytes.*384 bytes each"):
        open_video(path)


def test_raw_unknown_geometry(tmp_path):
    path = tmp_path / "clip.yuv"
    path.write_bytes(bytes(384))
    with pytest.raises(InputError, match="cannot infer WxH from name; pass --size WxH --fps F"):
        open_video(path)
    with pytest.raises(InputError, match="frame rate"):
        open_video(path, width=16, height=16)
    with pytest.raises(InputError, match="both width and height"):
        open_video(path, width=16, fps=25)
    info, frames = read_all(path, width=16, height=16, fps=25)
    assert info == VideoInfo(16, 16, Fraction(25), 8, "yuv420p", 1)
    assert len(frames) == 1


def test_raw_empty_and_missing_files(tmp_path):
    (tmp_path / "E_16x16_30.yuv").write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        open_video(tmp_path / "E_16x16_30.yuv")
    with pytest.raises(InputError, match="not found"):
        open_video(tmp_path / "Missing_16x16_30.yuv")


def test_raw_10bit_value_above_1023_names_the_frame(tmp_path):
    path = tmp_path / "Bad_4x2_30_10bit.yuv"  # 4x2 luma + 2 x (1x2) chroma = 12 samples = 24 bytes
    samples = np.full((3, 12), 512, dtype="<u2")
    samples[1, 5] = 2000
    path.write_bytes(samples.tobytes())
    with open_video(path) as source:
        assert source.info.frame_count == 3
        frames = iter(source)
        assert int(next(frames).y[0, 0]) == 512
        with pytest.raises(InputError, match=r"frame 1 .*2000"):
            next(frames)


def test_bad_arguments(tmp_path):
    with pytest.raises(InputError, match="max_frames"):
        open_video(tmp_path / "X_16x16_30.yuv", max_frames=0)
    with pytest.raises(InputError, match="frame rate"):
        open_video(tmp_path / "X_16x16_30.yuv", fps="fast")
    assert parse_fps(29.97) == Fraction(2997, 100)
    assert parse_fps("30000/1001") == Fraction(30000, 1001)
    with pytest.raises(InputError):
        parse_fps(0)


# --------------------------------------------------------------------------- PyAV reader


@needs(CARPHONE)
def test_pyav_mp4():
    with open_video(CARPHONE) as source:
        assert source.info.frame_count == 120
    info, frames = read_all(CARPHONE, max_frames=5)
    assert info == VideoInfo(176, 144, Fraction(30000, 1001), 8, "yuv420p", 5)
    assert len(frames) == 5
    assert frames[0].y.shape == (144, 176) and frames[0].u.shape == (72, 88)
    assert frames[0].y.dtype == np.uint8
    assert 30 < frames[0].y.mean() < 220  # a real picture, not padding or zeros
    # Matches FFmpeg's own decode (line_size padding dropped correctly).
    with av.open(str(CARPHONE)) as container:
        reference = next(container.decode(video=0)).to_ndarray(format="yuv420p")
    assert np.array_equal(frames[0].y, reference[:144])


@needs(VTEST)
def test_pyav_avi_msmpeg4():
    with open_video(VTEST) as source:
        assert source.info.frame_count == 795
    info, frames = read_all(VTEST, max_frames=3)
    assert info == VideoInfo(768, 576, Fraction(10), 8, "yuv420p", 3)
    assert [f.y.shape for f in frames] == [(576, 768)] * 3


@needs(TREE)
def test_pyav_avi_cinepak_rgb_source():
    with open_video(TREE) as source:
        # The AVI header declares 444 frames (dropped-frame entries); 68 are coded.
        assert source.info.frame_count == 68
        assert (source.info.width, source.info.height, source.info.bit_depth) == (320, 240, 8)
        count = 0
        for frame in source:
            assert frame.y.shape == (240, 320) and frame.u.shape == (120, 160)
            count += 1
    assert count == 68
    # RGB sources go through dvclic.color (BT.709): converting back gives the decoded RGB.
    _, (frame,) = read_all(TREE, max_frames=1)
    with av.open(str(TREE)) as container:
        rgb = next(container.decode(video=0)).to_ndarray(format="rgb24")
    back = (yuv420_to_rgb(frame)[0].permute(1, 2, 0) * 255).round().byte().numpy()
    assert psnr(back, rgb) > 35


@needs(CARPHONE)
def test_pyav_reiteration_and_close_stops_iteration():
    with open_video(CARPHONE, max_frames=3) as source:
        assert_same_frames(list(source), list(source))
        running = iter(source)
        next(running)
    with pytest.raises(StopIteration):
        next(running)
    with pytest.raises(ValueError, match="closed"):
        iter(source)


def test_not_a_video_is_an_input_error(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("These are notes, not a video.\n" * 200)
    with pytest.raises(InputError, match="notes.txt"):
        open_video(text)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="cannot open"):
        open_video(empty)
    garbage = tmp_path / "garbage.mkv"
    garbage.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(InputError):
        open_video(garbage)


@needs(CARPHONE)
def test_corrupted_stream_raises_input_error_naming_the_frame(tmp_path):
    data = bytearray(CARPHONE.read_bytes())
    rng = np.random.default_rng(0)
    positions = rng.integers(100_000, len(data), size=2000)
    data_array = np.frombuffer(data, dtype=np.uint8).copy()
    data_array[positions] = rng.integers(0, 256, size=positions.size, dtype=np.uint8)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(data_array.tobytes())
    # Decoders conceal some damage; whatever gets through must surface as one InputError.
    try:
        with open_video(broken) as source:
            for _ in source:
                pass
    except InputError as error:
        assert "broken.mp4" in str(error) and re.search(r"frame \d+", str(error))
    # Truncation (index lost) fails at open.
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(CARPHONE.read_bytes()[:300_000])
    with pytest.raises(InputError, match="truncated.mp4"):
        with open_video(truncated) as source:
            list(source)


def test_missing_file_and_directory_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        open_video(tmp_path / "missing.mp4")
    with pytest.raises(InputError, match="not a regular file"):
        open_video(tmp_path)


def test_audio_only_file_has_no_video_stream(tmp_path):
    path = tmp_path / "tone.wav"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    with pytest.raises(InputError, match="no video stream"):
        open_video(path)


@needs(CARPHONE)
def test_size_options_are_refused_for_containers():
    with pytest.raises(InputError, match="raw .yuv"):
        open_video(CARPHONE, width=176, height=144)


def test_input_errors_are_dvclic_errors():
    assert issubclass(InputError, DvclicError)


# --------------------------------------------------------------------------- writers


def sample_frames(path: Path, count: int, size: tuple[int, int] | None = None) -> tuple[VideoInfo, list[YUVFrame]]:
    info, frames = read_all(path, max_frames=count)
    if size is not None:
        frames = [crop_frame(f, *size) for f in frames]
        info = dataclasses.replace(info, height=size[0], width=size[1])
    return info, frames


def write_all(path: Path | str, info: VideoInfo, frames: list[YUVFrame]) -> None:
    with open_writer(path, info) as writer:
        for frame in frames:
            writer.write(frame)
        assert writer.frames_written == len(frames)


@needs(CISCO, SPARKS)
@pytest.mark.parametrize("source", [CISCO, SPARKS], ids=["8bit", "10bit"])
@pytest.mark.parametrize("size", [None, (11, 17), (1, 1)], ids=["full", "17x11", "1x1"])
@pytest.mark.parametrize("ext", ["y4m", "yuv"])
def test_lossless_writers_round_trip_exactly(tmp_path, source, size, ext):
    info, frames = sample_frames(source, 3, size)
    out = tmp_path / f"out_{info.width}x{info.height}.{ext}"
    write_all(out, info, frames)
    kwargs = {}
    if ext == "yuv":
        kwargs = dict(fps=info.fps, bit_depth=info.bit_depth)
    back_info, back = read_all(out, **kwargs)
    assert back_info == dataclasses.replace(info, frame_count=3)
    assert_same_frames(frames, back)
    assert sorted(os.listdir(tmp_path)) == [out.name]  # no temporary left behind


@needs(CISCO, SPARKS)
def test_y4m_header_and_raw_layout(tmp_path):
    info, frames = sample_frames(CISCO, 1)
    write_all(tmp_path / "a.y4m", info, frames)
    data = (tmp_path / "a.y4m").read_bytes()
    header, rest = data.split(b"\n", 1)
    assert header.split()[:6] == [b"YUV4MPEG2", b"W320", b"H192", b"F12:1", b"Ip", b"A1:1"]
    assert b"C420jpeg" in header
    assert rest == b"FRAME\n" + frame_to_bytes(frames[0])

    info, frames = sample_frames(SPARKS, 1)
    write_all(tmp_path / "b.y4m", info, frames)
    header = (tmp_path / "b.y4m").read_bytes().split(b"\n", 1)[0]
    assert b"C420p10" in header and b"F30:1" in header
    write_all(tmp_path / "Sparks_480x270_30_10bit.yuv", info, frames)
    assert (tmp_path / "Sparks_480x270_30_10bit.yuv").read_bytes() == np.fromfile(
        SPARKS, dtype=np.uint8, count=480 * 270 * 3
    ).tobytes()


@needs(CISCO, SPARKS)
@pytest.mark.parametrize(
    ("source", "size", "stored"),
    [(CISCO, None, (192, 320)), (CISCO, (11, 17), (12, 18)), (SPARKS, (64, 96), (64, 96))],
    ids=["8bit", "odd-padded", "10bit-to-8bit"],
)
@pytest.mark.parametrize("ext", ["mp4", "mkv"])
def test_x264_writer_makes_a_playable_file(tmp_path, source, size, stored, ext):
    info, frames = sample_frames(source, 4, size)
    out = tmp_path / f"out.{ext}"
    write_all(out, info, frames)
    assert sorted(os.listdir(tmp_path)) == [out.name]
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        decoded = [f.to_ndarray(format="yuv420p") for f in container.decode(stream)]
    assert len(decoded) == 4
    height, width = stored
    assert decoded[0].shape == (height * 3 // 2, width)
    shift = info.bit_depth - 8
    for frame, picture in zip(frames, decoded):
        expected = (frame.y.astype(np.int32) + (1 << shift >> 1)) >> shift
        assert psnr(picture[: info.height, : info.width], expected) > 38  # CRF 10: near transparent
    # Also readable through our own reader, with the padded size.
    back_info, _ = read_all(out, max_frames=1)
    assert (back_info.height, back_info.width, back_info.fps) == (height, width, info.fps)


@needs(CISCO, SPARKS)
def test_png_directory_writer(tmp_path):
    info, frames = sample_frames(CISCO, 3)
    out = tmp_path / "frames"
    write_all(f"{out}/", info, frames)
    assert sorted(os.listdir(out)) == ["frame_00000.png", "frame_00001.png", "frame_00002.png"]
    assert sorted(os.listdir(tmp_path)) == ["frames"]
    with Image.open(out / "frame_00001.png") as image:
        assert image.mode == "RGB" and image.size == (320, 192)
        pixels = np.asarray(image)
    expected = torch.round(yuv420_to_rgb(frames[1])[0].permute(1, 2, 0) * 255).byte().numpy()
    assert np.array_equal(pixels, expected)

    # 10-bit source: 16-bit RGB PNGs into an existing empty directory.
    info, frames = sample_frames(SPARKS, 2, (9, 17))
    out16 = tmp_path / "frames16"
    out16.mkdir()
    write_all(out16, info, frames)
    assert sorted(os.listdir(out16)) == ["frame_00000.png", "frame_00001.png"]
    with av.open(str(out16 / "frame_00001.png")) as container:
        picture = next(container.decode(video=0))
        assert picture.format.name.startswith("rgb48")
        pixels16 = picture.to_ndarray(format="rgb48le")
    expected16 = torch.round(yuv420_to_rgb(frames[1])[0].permute(1, 2, 0) * 65535).to(torch.int32).numpy()
    assert np.array_equal(pixels16.astype(np.int32), expected16)


@needs(CISCO)
def test_png_directory_must_be_empty(tmp_path):
    info, frames = sample_frames(CISCO, 1)
    (tmp_path / "old.txt").write_text("x")
    with pytest.raises(InputError, match="not empty"):
        open_writer(tmp_path, info)
    with pytest.raises(InputError, match="not a directory"):
        open_writer(f"{tmp_path / 'old.txt'}/", info)


@needs(CISCO)
@pytest.mark.parametrize("target", ["out.y4m", "out.yuv", "out.mp4", "out.mkv", "pngs/"])
def test_failure_inside_with_leaves_nothing(tmp_path, target):
    info, frames = sample_frames(CISCO, 2)
    with pytest.raises(RuntimeError, match="boom"):
        with open_writer(tmp_path / target if not target.endswith("/") else f"{tmp_path}/{target}", info) as writer:
            writer.write(frames[0])
            writer.write(frames[1])
            assert os.listdir(tmp_path)  # the temporary exists while writing ...
            assert not (tmp_path / target.rstrip("/")).exists()  # ... the output does not
            raise RuntimeError("boom")
    assert os.listdir(tmp_path) == []


@needs(CISCO)
def test_abort_and_garbage_collection_leave_nothing(tmp_path):
    info, frames = sample_frames(CISCO, 1)
    writer = open_writer(tmp_path / "a.y4m", info)
    writer.write(frames[0])
    writer.abort()
    writer.abort()  # idempotent
    assert os.listdir(tmp_path) == []
    with pytest.raises(ValueError):
        writer.write(frames[0])

    abandoned = open_writer(tmp_path / "b.mp4", info)
    abandoned.write(frames[0])
    del abandoned
    gc.collect()
    assert os.listdir(tmp_path) == []


@needs(CISCO)
def test_writer_rejects_mismatched_frames_and_bad_paths(tmp_path):
    info, frames = sample_frames(CISCO, 1)
    with open_writer(tmp_path / "a.yuv", info) as writer:
        with pytest.raises(ValueError, match="expects 320x192"):
            writer.write(crop_frame(frames[0], 10, 10))
        writer.write(frames[0])
    assert (tmp_path / "a.yuv").stat().st_size == 320 * 192 * 3 // 2
    with pytest.raises(InputError, match=r"\.y4m.*\.yuv.*\.mp4.*\.mkv"):
        open_writer(tmp_path / "a.avi", info)
    with pytest.raises(InputError, match="does not exist"):
        open_writer(tmp_path / "no" / "such" / "a.y4m", info)
    assert sorted(os.listdir(tmp_path)) == ["a.yuv"]


# --------------------------------------------------------------------------- padding


@pytest.mark.parametrize(("height", "width"), [(239, 417), (1, 1), (3, 3), (64, 128)])
def test_pad_and_crop_round_trip(height, width):
    x = torch.rand(2, 3, height, width, generator=torch.Generator().manual_seed(height + width))
    padded = pad_to_multiple(x, 64)
    assert padded.shape[-2:] == padded_size(height, width, 64)
    assert padded.shape[-2] % 64 == 0 and padded.shape[-1] % 64 == 0
    assert torch.equal(crop_to(padded, height, width), x)
    # replicate: everything beyond the picture repeats its last row / column
    assert torch.equal(padded[..., height:, :width], x[..., -1:, :].expand(-1, -1, padded.shape[-2] - height, -1))
    assert torch.equal(padded[..., :, width:], padded[..., :, width - 1 : width].expand_as(padded[..., :, width:]))


def test_padding_details():
    one = torch.tensor([[[[7]]]], dtype=torch.uint8)
    assert torch.equal(pad_to_multiple(one, 64), torch.full((1, 1, 64, 64), 7, dtype=torch.uint8))
    x = torch.rand(1, 2, 64, 64)
    assert pad_to_multiple(x, 64) is x
    assert padded_size(417, 239, 16) == (432, 240)
    with pytest.raises(ValueError):
        pad_to_multiple(torch.rand(3, 4, 4), 8)
    with pytest.raises(ValueError):
        crop_to(x, 65, 10)
    # differentiable: gradients of replicated pixels accumulate on the border
    y = torch.rand(1, 1, 2, 2, requires_grad=True)
    pad_to_multiple(y, 4).sum().backward()
    assert torch.equal(y.grad, torch.tensor([[[[1.0, 3.0], [3.0, 9.0]]]]))
