"""JPEG for camera images on off-host links (OpenCV), with the header read first so a receiver
never decodes an image larger than the message declared, nor one whose decode cost is out of
proportion to its size (progressive or multi-scan JPEGs: libjpeg walks the whole image once per
scan, so a 300 KB file can cost seconds). Only sequential Huffman JPEGs with a few scans and a
plausible number of bytes per pixel are decoded: their cost is linear in the pixel count.

Images are RGB uint8 HxWx3 on both ends; OpenCV's BGR order stays inside this module.
"""

from __future__ import annotations

import io

import numpy as np


def encode_rgb(img: np.ndarray, quality: int) -> bytes | None:
    """``img`` (RGB, uint8, HxWx3, C-contiguous) as JPEG bytes, or None if OpenCV fails."""
    import cv2

    ok, buf = cv2.imencode(
        ".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    )
    return buf.tobytes() if ok else None


def decode_rgb(data: bytes, size: tuple[int, int]) -> np.ndarray | None:
    """A read-only RGB image of exactly ``size`` (height, width), or None if ``data`` is not one.

    Decoded with Pillow rather than OpenCV: the same libjpeg-turbo, about 1.3x slower on a 640x480
    frame here (5.9 vs 4.6 ms), but libjpeg's warnings on corrupt data come back to us instead of
    being printed to stderr once per message by OpenCV (a flood of bad frames must not flood the log).
    """
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data), formats=("JPEG",)) as img:
            if (img.height, img.width) != tuple(size):
                return None
            rgb = np.asarray(img.convert("RGB"))
    except Exception:  # PIL raises several kinds on corrupt data
        return None
    if rgb.shape != (*size, 3) or rgb.dtype != np.uint8:
        return None
    rgb.flags.writeable = False
    return rgb


SEQUENTIAL = (0xC0, 0xC1)  # SOF0 baseline, SOF1 extended sequential (Huffman): what encoders make for cameras
MAX_SCANS = 3  # one interleaved scan, or one per colour component
MAX_BYTES_PER_PIXEL = 2.0  # quality 100 stays well below; more is padding or crafted entropy data


def frame_size(data: bytes) -> tuple[int, int] | None:
    """(height, width) from a JPEG's first start-of-frame header, or None if there is none."""
    header = frame_header(data)
    return None if header is None else header[1:]


def decode_cost_problem(data: bytes, size: tuple[int, int]) -> str:
    """Why decoding ``data`` as a ``size`` (height, width) image is refused ("" if it may be decoded).

    Costs one pass over the bytes in C (``bytes.count``), never a decode. A scan marker (FF DA) cannot
    occur inside entropy-coded data, where every FF byte is stuffed as FF 00.
    """
    header = frame_header(data)
    if header is None or header[1:] != size:
        return f"not a JPEG of size {size[0]}x{size[1]}"
    if header[0] not in SEQUENTIAL:
        return f"JPEG process SOF{header[0] - 0xC0} refused (progressive, lossless and arithmetic-coded JPEGs can cost far more than their size)"
    scans = data.count(b"\xff\xda")
    if scans > MAX_SCANS:
        return f"{scans} JPEG scans > {MAX_SCANS}"
    if len(data) > MAX_BYTES_PER_PIXEL * size[0] * size[1] + 4096:
        return f"{len(data)} bytes for {size[0]}x{size[1]} pixels"
    return ""


def frame_header(data: bytes) -> tuple[int, int, int] | None:
    """(SOF marker, height, width) from a JPEG's first start-of-frame header, or None if there is none."""
    if data[:2] != b"\xff\xd8":
        return None
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            i += 2
            continue
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # SOF0..SOF15
            if i + 9 > n:
                return None
            return marker, int.from_bytes(data[i + 5 : i + 7], "big"), int.from_bytes(data[i + 7 : i + 9], "big")
        if length < 2:
            return None
        i += 2 + length
    return None
