"""Field codecs of the wire protocol: each one validates a value and converts it to and from
its msgpack form. :mod:`vlash.messages` declares which codec each message field uses.

``pack`` checks a Python value on the sending side (types, dtypes, shapes, finite floats) and
returns its wire form; ``unpack`` checks a wire value against :class:`Limits` on the receiving
side and returns the Python value. Both raise only :class:`ProtocolError`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from vlash import jpeg
from vlash.contracts import ObservationFrame

#: The only dtypes that exist on the wire (always little-endian).
WIRE_DTYPES = ("float32", "float64", "uint8", "int32", "int64")
_LE = {name: np.dtype(name).newbyteorder("<") for name in WIRE_DTYPES}
_INT64_MAX = 2**63 - 1


class ProtocolError(ValueError):
    """A message that cannot be sent or was rejected on receipt.

    ``field`` names the offending field (dotted for nested values, e.g. ``images.front.shape``);
    ``reason`` is a short stable key for counters (see ``vlash.messages.REASONS``).
    """

    def __init__(self, field: str, reason: str, detail: str = "") -> None:
        self.field, self.reason, self.detail = field, reason, detail
        super().__init__(f"{field}: {reason}" + (f" ({detail})" if detail else ""))

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.field, self.reason, self.detail))


@dataclass(frozen=True)
class Limits:
    """Receiver-side bounds; anything beyond them is rejected before it costs memory or time."""

    max_bytes: int = 16 * 1024 * 1024  # a whole encoded message
    max_images: int = 8
    max_image_side: int = 2048
    max_image_bytes: int = 64 * 1024 * 1024  # decoded pixels of all images of one message
    max_jpeg_pixels: int = 8 * 1024 * 1024  # pixels decoded from JPEG per message: bounds its decode time
    max_array_elems: int = 1 << 20  # state, plan, actions, each extra
    max_extras: int = 32
    max_str_len: int = 4096
    max_id_len: int = 64  # robot ids, image and extra names, modes, error codes
    max_container_len: int = 256  # entries of any msgpack map or array (arrays travel as bytes; names are few)
    max_depth: int = 8  # nesting of plain-data fields (features, policy, chunk settings)
    max_history: int = 8  # past frames of one observation


def _name(*parts: object) -> str:
    """A dotted field name; untrusted keys are shortened and made printable."""
    out = []
    for part in parts:
        text = part if isinstance(part, str) else repr(part)
        text = "".join(c if c.isprintable() else "?" for c in text[:40])
        if text:
            out.append(text)
    return ".".join(out)


def check_keys(prefix: str, mapping: dict, expected: frozenset[str], optional: frozenset[str] = frozenset()) -> None:
    """Require the keys ``expected`` in ``mapping`` and no others; those in ``optional`` may be absent."""
    for key in mapping:
        if key not in expected:
            raise ProtocolError(_name(prefix, key), "unknown_field")
    if len(mapping) != len(expected):
        missing = sorted(expected.difference(mapping, optional))
        if missing:
            raise ProtocolError(_name(prefix, missing[0]), "missing")


class Spec:
    """Base field codec: identical checks on both sides unless a subclass says otherwise."""

    def check(self, name: str, value: Any, limits: Limits | None) -> Any:
        raise NotImplementedError

    def pack(self, name: str, value: Any, jpeg_quality: int | None) -> Any:
        return self.check(name, value, None)

    def unpack(self, name: str, wire: Any, limits: Limits) -> Any:
        return self.check(name, wire, limits)


@dataclass(frozen=True)
class Int(Spec):
    """A non-negative integer below 2**63 (steps, sequence numbers, counts)."""

    def check(self, name: str, value: Any, limits: Limits | None) -> int:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise ProtocolError(name, "type", f"expected int, got {type(value).__name__}")
        value = int(value)
        if not 0 <= value <= _INT64_MAX:
            raise ProtocolError(name, "range", f"{value} not in [0, 2**63)")
        return value


@dataclass(frozen=True)
class Float(Spec):
    """A finite float, optionally bounded below (ints are accepted and converted)."""

    minimum: float | None = None
    positive: bool = False

    def check(self, name: str, value: Any, limits: Limits | None) -> float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ProtocolError(name, "type", f"expected float, got {type(value).__name__}")
        try:
            value = float(value)
        except OverflowError:
            raise ProtocolError(name, "nonfinite") from None
        if not math.isfinite(value):
            raise ProtocolError(name, "nonfinite", repr(value))
        if (self.minimum is not None and value < self.minimum) or (self.positive and value <= 0):
            raise ProtocolError(name, "range", repr(value))
        return value


@dataclass(frozen=True)
class Bool(Spec):
    def check(self, name: str, value: Any, limits: Limits | None) -> bool:
        if not isinstance(value, bool | np.bool_):
            raise ProtocolError(name, "type", f"expected bool, got {type(value).__name__}")
        return bool(value)


@dataclass(frozen=True)
class Str(Spec):
    """A string; its maximum length is the ``Limits`` attribute named ``max_attr``."""

    max_attr: str = "max_str_len"
    nonempty: bool = False

    def check(self, name: str, value: Any, limits: Limits | None) -> str:
        if not isinstance(value, str):
            raise ProtocolError(name, "type", f"expected str, got {type(value).__name__}")
        if self.nonempty and not value:
            raise ProtocolError(name, "empty")
        if limits is not None and len(value) > getattr(limits, self.max_attr):
            raise ProtocolError(name, "too_large", f"{len(value)} characters")
        return value


def _key(name: str, key: Any, limits: Limits | None) -> str:
    """A non-empty short string key of an image or extras map."""
    if not isinstance(key, str) or not key:
        raise ProtocolError(name, "type", "keys must be non-empty strings")
    if limits is not None and len(key) > limits.max_id_len:
        raise ProtocolError(name, "too_large", f"key of {len(key)} characters")
    return key


def _array_from_wire(name: str, wire: Any, dtype: str, ndim: int, max_elems: int, keys: frozenset) -> tuple:
    """``(shape, data)`` of an array map with exactly ``keys``, after checking dtype and shape."""
    if not isinstance(wire, dict):
        raise ProtocolError(name, "type", "expected an array map {dtype, shape, data}")
    check_keys(name, wire, keys)
    got = wire["dtype"]
    if not isinstance(got, str) or got not in _LE:
        raise ProtocolError(_name(name, "dtype"), "dtype", f"{got!r:.40} is not one of {WIRE_DTYPES}")
    if got != dtype:
        raise ProtocolError(_name(name, "dtype"), "dtype", f"expected {dtype}, got {got}")
    shape = _shape(name, wire["shape"], ndim)
    elems = math.prod(shape)
    if elems > max_elems:
        raise ProtocolError(name, "too_large", f"{elems} elements > {max_elems}")
    data = wire["data"]
    if not isinstance(data, bytes):
        raise ProtocolError(_name(name, "data"), "type", "expected bytes")
    return shape, data


def _raw_array(name: str, shape: tuple[int, ...], data: bytes, dtype: str) -> np.ndarray:
    """A read-only view of ``data`` as an array of ``shape``; its size must match exactly."""
    if len(data) != math.prod(shape) * _LE[dtype].itemsize:
        raise ProtocolError(_name(name, "data"), "shape", f"{len(data)} bytes for shape {list(shape)}")
    return np.frombuffer(data, dtype=_LE[dtype]).reshape(shape)


MAX_DIM = 1 << 24


def _shape(name: str, shape: Any, ndim: int) -> tuple[int, ...]:
    field = _name(name, "shape")
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise ProtocolError(field, "type", "expected a list of non-negative ints")
    if len(shape) != ndim:
        raise ProtocolError(field, "shape", f"expected {ndim} dimensions, got {len(shape)}")
    if any(d > MAX_DIM for d in shape):  # each side too, not just the product (a 0 makes that 0)
        raise ProtocolError(field, "too_large", f"a dimension above {MAX_DIM}: {shape}")
    return tuple(shape)


_ARRAY_KEYS = frozenset({"dtype", "shape", "data"})


def _view(arr: np.ndarray) -> memoryview:
    """The bytes of a C-contiguous array without copying them (msgpack packs it as bin)."""
    return memoryview(arr.reshape(-1).view(np.uint8))


@dataclass(frozen=True)
class Array(Spec):
    """A finite float32 array of ``ndim`` dimensions, each at least ``min_dims``."""

    ndim: int
    min_dims: tuple[int, ...] = ()

    def _check_values(self, name: str, arr: np.ndarray) -> None:
        if arr.ndim != self.ndim:
            raise ProtocolError(name, "shape", f"expected {self.ndim} dimensions, got shape {arr.shape}")
        for got, least in zip(arr.shape, self.min_dims, strict=False):
            if got < least:
                raise ProtocolError(name, "empty", f"shape {arr.shape}")
        if arr.size and not np.isfinite(arr).all():
            raise ProtocolError(name, "nonfinite", "NaN or inf")

    def pack(self, name: str, value: Any, jpeg_quality: int | None) -> dict[str, Any]:
        arr = np.asarray(value) if not isinstance(value, np.ndarray) else value
        if arr.dtype.kind not in "fiu":
            raise ProtocolError(name, "dtype", f"expected numbers, got dtype {arr.dtype}")
        with np.errstate(over="ignore", invalid="ignore"):
            arr = np.ascontiguousarray(arr, dtype=_LE["float32"])
        self._check_values(name, arr)
        return {"dtype": "float32", "shape": list(arr.shape), "data": _view(arr)}

    def unpack(self, name: str, wire: Any, limits: Limits) -> np.ndarray:
        shape, data = _array_from_wire(name, wire, "float32", self.ndim, limits.max_array_elems, _ARRAY_KEYS)
        arr = _raw_array(name, shape, data, "float32")
        self._check_values(name, arr)
        return arr


@dataclass(frozen=True)
class Extras(Spec):
    """Named 1-D float32 arrays (velocity, task state, ...)."""

    def pack(self, name: str, value: Any, jpeg_quality: int | None) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            raise ProtocolError(name, "type", "expected a dict of arrays")
        return {_key(name, k, None): _EXTRA.pack(_name(name, k), v, None) for k, v in value.items()}

    def unpack(self, name: str, wire: Any, limits: Limits) -> dict[str, np.ndarray]:
        if not isinstance(wire, dict):
            raise ProtocolError(name, "type", "expected a map of arrays")
        if len(wire) > limits.max_extras:
            raise ProtocolError(name, "too_large", f"{len(wire)} entries > {limits.max_extras}")
        return {_key(name, k, limits): _EXTRA.unpack(_name(name, k), v, limits) for k, v in wire.items()}


_EXTRA = Array(ndim=1)


@dataclass(frozen=True)
class Images(Spec):
    """Named RGB uint8 HxWx3 camera images, raw or JPEG-compressed on the wire."""

    def pack(self, name: str, value: Any, jpeg_quality: int | None) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            raise ProtocolError(name, "type", "expected a dict of images")
        out = {}
        for key, img in value.items():
            field = _name(name, key)
            _key(name, key, None)
            if not isinstance(img, np.ndarray) or img.dtype != np.uint8:
                raise ProtocolError(field, "dtype", "images must be uint8 arrays")
            if img.ndim != 3 or img.shape[2] != 3 or img.shape[0] == 0 or img.shape[1] == 0:
                raise ProtocolError(field, "shape", f"expected HxWx3, got {img.shape}")
            img = np.ascontiguousarray(img)
            if jpeg_quality is None:
                out[key] = {"dtype": "uint8", "shape": list(img.shape), "data": _view(img)}
            else:
                out[key] = {
                    "codec": "jpeg",
                    "dtype": "uint8",
                    "shape": list(img.shape),
                    "data": _jpeg(field, img, jpeg_quality),
                }
        return out

    def unpack(self, name: str, wire: Any, limits: Limits) -> dict[str, np.ndarray]:
        if not isinstance(wire, dict):
            raise ProtocolError(name, "type", "expected a map of images")
        if len(wire) > limits.max_images:
            raise ProtocolError(name, "too_large", f"{len(wire)} images > {limits.max_images}")
        checked, total, jpeg_pixels = [], 0, 0  # every declared size is checked before anything is decoded
        for key, item in wire.items():
            field = _name(name, key)
            _key(name, key, limits)
            jpeg = isinstance(item, dict) and "codec" in item
            keys = _JPEG_KEYS if jpeg else _ARRAY_KEYS
            (h, w, c), data = _array_from_wire(field, item, "uint8", 3, limits.max_image_bytes, keys)
            if c != 3 or h == 0 or w == 0:
                raise ProtocolError(_name(field, "shape"), "shape", f"expected HxWx3, got {[h, w, c]}")
            if max(h, w) > limits.max_image_side:
                raise ProtocolError(field, "too_large", f"{h}x{w} > {limits.max_image_side}")
            total += h * w * 3
            if total > limits.max_image_bytes:
                raise ProtocolError(name, "too_large", f"{total} decoded bytes > {limits.max_image_bytes}")
            jpeg_pixels += h * w if jpeg else 0
            if jpeg_pixels > limits.max_jpeg_pixels:
                raise ProtocolError(name, "too_large", f"{jpeg_pixels} JPEG pixels > {limits.max_jpeg_pixels}")
            if jpeg:
                _check_jpeg(field, item["codec"], data, (h, w))
            checked.append((key, field, jpeg, (h, w), data))
        return {
            key: _unjpeg(field, data, size) if jpeg else _raw_array(field, (*size, 3), data, "uint8")
            for key, field, jpeg, size, data in checked
        }


_JPEG_KEYS = _ARRAY_KEYS | {"codec"}


def _jpeg(field: str, img: np.ndarray, quality: int) -> bytes:
    data = jpeg.encode_rgb(img, quality)
    if data is None:
        raise ProtocolError(field, "codec", "JPEG encoding failed")
    return data


def _check_jpeg(field: str, codec: Any, data: bytes, size: tuple[int, int]) -> None:
    """Refuse, from the header alone, a JPEG that is not exactly ``size`` or could cost more than its size."""
    if codec != "jpeg":
        raise ProtocolError(_name(field, "codec"), "codec", f"unknown codec {codec!r:.40}")
    problem = jpeg.decode_cost_problem(data, size)
    if problem:
        raise ProtocolError(field, "codec", problem)


def _unjpeg(field: str, data: bytes, size: tuple[int, int]) -> np.ndarray:
    """Decode a JPEG that passed :func:`_check_jpeg`."""
    rgb = jpeg.decode_rgb(data, size)
    if rgb is None:
        raise ProtocolError(field, "codec", "undecodable JPEG")
    return rgb


def _plain(name: str, value: Any, depth: int, limits: Limits | None) -> Any:
    """Check that ``value`` is plain data: None, bool, int, float (not NaN), str, list, str-keyed dict.

    NumPy scalars and numeric arrays are converted to their Python equivalents.
    """
    if isinstance(value, np.generic):
        value = value.item()
    elif isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        value = value.tolist()
    if value is None or isinstance(value, bool | str):
        if isinstance(value, str) and limits is not None and len(value) > limits.max_str_len:
            raise ProtocolError(name, "too_large")
        return value
    if isinstance(value, int):
        if not -(2**63) <= value < 2**64:
            raise ProtocolError(name, "range")
        return value
    if isinstance(value, float):
        if math.isnan(value):
            raise ProtocolError(name, "nonfinite", "NaN")
        return value
    if depth >= (limits.max_depth if limits is not None else Limits.max_depth):
        raise ProtocolError(name, "too_large", "nested too deeply")
    if isinstance(value, list | tuple):
        return [_plain(name, v, depth + 1, limits) for v in value]
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str):
                raise ProtocolError(name, "type", "map keys must be strings")
        return {k: _plain(_name(name, k), v, depth + 1, limits) for k, v in value.items()}
    raise ProtocolError(name, "type", f"{type(value).__name__} is not plain data")


@dataclass(frozen=True)
class Plain(Spec):
    """A str-keyed map of plain data (no arrays, no bytes)."""

    def check(self, name: str, value: Any, limits: Limits | None) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise ProtocolError(name, "type", "expected a map")
        return _plain(name, value, 0, limits)


@dataclass(frozen=True)
class Features(Plain):
    """Robot features as plain data; the well-known keys must have their documented types."""

    def check(self, name: str, value: Any, limits: Limits | None) -> dict[str, Any]:
        value = super().check(name, value, limits)
        for key in ("joint_names", "action_names"):
            names = value.get(key)
            if names is not None and not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
                raise ProtocolError(_name(name, key), "type", "expected a list of strings")
        for key in ("action_kind",):
            if key in value and not isinstance(value[key], str):
                raise ProtocolError(_name(name, key), "type", "expected a string")
        cameras = value.get("cameras")
        if cameras is not None:
            if not isinstance(cameras, dict):
                raise ProtocolError(_name(name, "cameras"), "type", "expected {name: [h, w]}")
            for cam, hw in cameras.items():
                if not (
                    isinstance(hw, list) and len(hw) in (2, 3) and all(type(d) is int and d > 0 for d in hw)
                ):
                    raise ProtocolError(_name(name, "cameras", cam), "shape", "expected [h, w]")
        return value


_FRAME_KEYS = frozenset({"step", "state", "extras"})
_FRAME_STATE = Array(ndim=1, min_dims=(1,))


@dataclass(frozen=True)
class History(Spec):
    """Past measured frames, oldest first: ``{step, state, extras}`` each, never images (too large to
    resend every step; the policy reuses the current ones). Their consistency with the observation
    is :func:`check_history`'s."""

    def pack(self, name: str, value: Any, jpeg_quality: int | None) -> list[dict[str, Any]]:
        if not isinstance(value, list | tuple):
            raise ProtocolError(name, "type", "expected a sequence of frames")
        if len(value) > Limits.max_history:
            raise ProtocolError(name, "too_large", f"{len(value)} frames > {Limits.max_history}")
        out = []
        for i, frame in enumerate(value):
            field = _name(name, i)
            if not isinstance(frame, ObservationFrame):
                raise ProtocolError(field, "type", f"expected an ObservationFrame, got {type(frame).__name__}")
            if frame.images:
                raise ProtocolError(_name(field, "images"), "type", "history frames carry no images")
            out.append({
                "step": Int().check(_name(field, "step"), frame.step, None),
                "state": _FRAME_STATE.pack(_name(field, "state"), frame.state, None),
                "extras": Extras().pack(_name(field, "extras"), frame.extras, None),
            })
        return out

    def unpack(self, name: str, wire: Any, limits: Limits) -> tuple[ObservationFrame, ...]:
        if not isinstance(wire, list):
            raise ProtocolError(name, "type", "expected a list of frames")
        if len(wire) > limits.max_history:
            raise ProtocolError(name, "too_large", f"{len(wire)} frames > {limits.max_history}")
        for i, frame in enumerate(wire):  # every size first, then the values
            field = _name(name, i)
            if not isinstance(frame, dict):
                raise ProtocolError(field, "type", "expected a map {step, state, extras}")
            check_keys(field, frame, _FRAME_KEYS)
            Int().check(_name(field, "step"), frame["step"], limits)
            _array_from_wire(_name(field, "state"), frame["state"], "float32", 1, limits.max_array_elems, _ARRAY_KEYS)
            extras = frame["extras"]
            if not isinstance(extras, dict):
                raise ProtocolError(_name(field, "extras"), "type", "expected a map of arrays")
            if len(extras) > limits.max_extras:
                raise ProtocolError(_name(field, "extras"), "too_large", f"{len(extras)} entries > {limits.max_extras}")
            for key, item in extras.items():
                _key(_name(field, "extras"), key, limits)
                _array_from_wire(_name(field, "extras", key), item, "float32", 1, limits.max_array_elems, _ARRAY_KEYS)
        return tuple(
            ObservationFrame(
                step=frame["step"],
                state=_FRAME_STATE.unpack(_name(name, i, "state"), frame["state"], limits),
                extras=Extras().unpack(_name(name, i, "extras"), frame["extras"], limits),
            )
            for i, frame in enumerate(wire)
        )


def check_history(
    name: str, history: tuple[ObservationFrame, ...], step: int, state: np.ndarray, extras: Mapping[str, np.ndarray]
) -> None:
    """Frames of steps strictly increasing and before ``step``, each with the observation's state
    length and its extras' names and shapes."""
    previous = -1
    for i, frame in enumerate(history):
        field = _name(name, i)
        if not previous < frame.step < step:
            raise ProtocolError(_name(field, "step"), "range", f"{frame.step} after {previous}, before {step} expected")
        previous = frame.step
        if np.shape(frame.state) != np.shape(state):
            raise ProtocolError(_name(field, "state"), "shape", f"{np.shape(frame.state)} != the observation's {np.shape(state)}")
        check_keys(_name(field, "extras"), dict(frame.extras), frozenset(extras))
        for key, value in frame.extras.items():
            if np.shape(value) != np.shape(extras[key]):
                raise ProtocolError(_name(field, "extras", key), "shape", f"{np.shape(value)} != {np.shape(extras[key])}")
