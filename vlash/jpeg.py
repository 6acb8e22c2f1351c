"""JPEG for camera images on off-host links (OpenCV), with the frame size read from the header
first so a receiver never decodes an image larger than the message declared.

Images are RGB uint8 HxWx3 on both ends; OpenCV's BGR order stays inside this module.
"""

from __future__ import annotations

import numpy as np


def encode_rgb(img: np.ndarray, quality: int) -> bytes | None:
    """``img`` (RGB, uint8, HxWx3, C-contiguous) as JPEG bytes, or None if OpenCV fails."""
    import cv2

    ok, buf = cv2.imencode(
        ".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    )
    return buf.tobytes() if ok else None


def decode_rgb(data: bytes, size: tuple[int, int]) -> np.ndarray | None:
    """A read-only RGB image of exactly ``size`` (height, width), or None if ``data`` is not one."""
    import cv2

    try:
        bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    except Exception:  # cv2.error on corrupt data
        return None
    if bgr is None or bgr.shape != (*size, 3) or bgr.dtype != np.uint8:
        return None
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    rgb.flags.writeable = False
    return rgb


def frame_size(data: bytes) -> tuple[int, int] | None:
    """(height, width) from a JPEG's first start-of-frame header, or None if there is none."""
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
            return int.from_bytes(data[i + 5 : i + 7], "big"), int.from_bytes(data[i + 7 : i + 9], "big")
        if length < 2:
            return None
        i += 2 + length
    return None
