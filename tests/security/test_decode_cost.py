"""Bounded cost per message: JPEGs whose decode cost is out of proportion to their size are refused
from the header, before any decoding; a message's JPEG pixels are budgeted; corrupt data is quiet."""

from __future__ import annotations

import cv2
import msgpack
import numpy as np
import pytest

from vlash import jpeg
from vlash.messages import Observation, ProtocolError, decode, encode


def jpeg_bytes(img: np.ndarray, progressive: bool = False) -> bytes:
    flags = [cv2.IMWRITE_JPEG_QUALITY, 90] + ([cv2.IMWRITE_JPEG_PROGRESSIVE, 1] if progressive else [])
    ok, buf = cv2.imencode(".jpg", img, flags)
    assert ok
    return buf.tobytes()


def scan_bomb(side: int = 256, extra_scans: int = 2000) -> bytes:
    """The decode-cost bomb class: a progressive JPEG whose last refinement scan is repeated many times.

    It declares its true size and is small, but libjpeg walks the whole image once per scan.
    """
    data = jpeg_bytes(np.zeros((side, side, 3), np.uint8), progressive=True)
    last = data.rindex(b"\xff\xda")
    scan = data[last:-2]  # the last scan, up to the end-of-image marker
    return data[:-2] + scan * extra_scans + b"\xff\xd9"


def wire_with(images: dict[str, tuple[bytes, tuple[int, int]]]) -> bytes:
    """An Observation on the wire carrying the given JPEG payloads under their declared shapes."""
    tree = msgpack.unpackb(encode(Observation("arm", 1, 1, 0.0, np.zeros(6, np.float32))))
    tree["body"]["images"] = {
        name: {"codec": "jpeg", "dtype": "uint8", "shape": [h, w, 3], "data": data}
        for name, (data, (h, w)) in images.items()
    }
    return msgpack.packb(tree)


@pytest.fixture
def no_decoding(monkeypatch):
    """Fail the test if anything gets as far as decoding pixels."""
    def refuse(*args, **kwargs):
        raise AssertionError("the decoder was reached")

    monkeypatch.setattr(jpeg, "decode_rgb", refuse)


def test_the_scan_bomb_is_what_it_claims_to_be():
    bomb = scan_bomb()
    assert len(bomb) < 300_000 and jpeg.frame_size(bomb) == (256, 256)
    assert bomb.count(b"\xff\xda") > 2000
    assert jpeg.frame_header(bomb)[0] == 0xC2  # progressive


@pytest.mark.parametrize("case", ["scan_bomb", "progressive", "baseline_many_scans", "padded"])
def test_costly_jpegs_are_refused_from_the_header_without_decoding(case, no_decoding):
    img = np.random.default_rng(1).integers(0, 255, (64, 64, 3), np.uint8)
    if case == "scan_bomb":
        data, size = scan_bomb(), (256, 256)
    elif case == "progressive":
        data, size = jpeg_bytes(img, progressive=True), (64, 64)
    elif case == "baseline_many_scans":  # a sequential header in front of many scans
        prog = jpeg_bytes(img, progressive=True)
        i = prog.index(b"\xff\xc2")
        data, size = prog[:i] + b"\xff\xc0" + prog[i + 2 :], (64, 64)
    else:  # entropy data far beyond what the pixels need
        base = jpeg_bytes(img)
        data, size = base[:-2] + b"\x00" * (64 * 64 * 3) + b"\xff\xd9", (64, 64)
    with pytest.raises(ProtocolError) as err:
        decode(wire_with({"f": (data, size)}))
    assert err.value.field == "images.f" and err.value.reason == "codec"
    expected = {"scan_bomb": "SOF2", "progressive": "SOF2", "baseline_many_scans": "scans", "padded": "bytes for"}
    assert expected[case] in err.value.detail


def test_a_message_has_a_jpeg_pixel_budget(no_decoding):
    big = jpeg_bytes(np.zeros((2048, 2048, 3), np.uint8))
    with pytest.raises(ProtocolError) as err:
        decode(wire_with({"a": (big, (2048, 2048)), "b": (big, (2048, 2048)), "c": (big, (2048, 2048))}))
    assert err.value.reason == "too_large" and "JPEG pixels" in err.value.detail


def test_ordinary_camera_jpegs_still_decode():
    ramp = np.linspace(0, 255, 640, dtype=np.float32)
    img = np.stack([np.tile(ramp, (480, 1)), np.full((480, 640), 128.0), np.tile(ramp[::-1], (480, 1))], -1).astype(np.uint8)
    msg = decode(wire_with({"front": (jpeg_bytes(img), (480, 640)), "wrist": (jpeg_bytes(img[:240, :320]), (240, 320))}))
    assert msg.images["front"].shape == (480, 640, 3) and msg.images["wrist"].shape == (240, 320, 3)
    assert np.abs(msg.images["front"].astype(int) - img[..., ::-1]).mean() < 3  # cv2 encoded it as BGR


def test_corrupt_jpeg_data_prints_nothing(capfd):
    data = jpeg_bytes(np.random.default_rng(3).integers(0, 255, (64, 64, 3), np.uint8))
    cut = data[: len(data) // 2] + b"\xff\xd9"
    for _ in range(20):
        try:
            decode(wire_with({"f": (cut, (64, 64))}))
        except ProtocolError:
            pass
    out, err = capfd.readouterr()
    assert out == "" and err == ""
