"""The live view: a control loop's ticks streamed to rerun (the viewer LeRobot uses), off the hot path.

What is logged, under ``ROBOT/``, on the timelines ``step`` (control steps) and ``time`` (seconds
from the first step, ``step / fps``):

- ``camera/NAME``: the camera frames (JPEG, at most ``image_hz`` per second);
- ``joints/JOINT/state`` and ``joints/JOINT/target``: the measured joint position and the target
  sent to the driver, one scalar series per joint (drawn in one plot per joint);
- ``joints/JOINT/conditioned``: at each chunk's start step, the future state the chunk was
  conditioned on (what the server's estimator computed from the observation this process sent),
  beside the measured state of that step;
- ``plan``: the queued plan after each chunk arrived, one line per joint (x: steps ahead, y up:
  the target; stored as ``-target`` because rerun's 2D view points y down);
- ``switch``: one text line per chunk switch (chunks, jump size, conditioned vs measured state) and
  ``switch/jump``, the jump's size; ``stall`` (1 while the robot holds for lack of an action) and
  ``events`` (stall starts and ends); ``chunk``, the chunk being executed;
- ``timing/delay_steps`` (Δ), ``timing/rtt_ms`` (each chunk's round trip) and ``timing/lateness_ms``.

The control thread only copies a few arrays and puts one tuple in a bounded queue per tick
(:meth:`LiveView.tick`, :meth:`sent`, :meth:`chunk`); a full queue drops the item and counts it.
A background thread turns the items into rerun calls and runs them only in the first half of each
control period (after a tick, while the control thread sleeps), so it never holds the interpreter
when the next tick is due. rerun (``rerun-sdk``, the ``viz`` extra) is imported only here, when a
view is opened.
"""

from __future__ import annotations

import logging
import os
import queue
import re
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vlash.future_state import make_estimator
from vlash.messages import ActionChunk, Observation
from vlash.plan import Installed, Switch
from vlash.scheduler import parse_mode, plan_request

log = logging.getLogger(__name__)

SPAWN = "spawn"
VIEWER_URL = re.compile(r"rerun(\+https?)?://[^/\s]+/proxy")
VIEWER_PORT = 9876  # rerun's default
INSTALL_HINT = "pip install 'vlash[viz]' (or: pip install 'rerun-sdk>=0.24,<0.34', the range LeRobot uses)"
_STOP = object()


class LiveViewUnavailable(RuntimeError):
    """The live view cannot be opened (rerun missing, no screen for a viewer); the message says what to do."""


def parse_display(text: str) -> str:
    """``--display``'s value: ``spawn`` (a local viewer) or a viewer's URL (``rerun+http://HOST:9876/proxy``)."""
    if text == SPAWN or VIEWER_URL.fullmatch(text):
        return text
    raise ValueError(f"--display: expected 'spawn' or a viewer URL like rerun+http://127.0.0.1:{VIEWER_PORT}/proxy, "
                     f"got {text!r}")


def require_rerun() -> Any:
    """The ``rerun`` module, or :class:`LiveViewUnavailable` saying how to install it."""
    try:
        import rerun
    except ImportError as exc:
        raise LiveViewUnavailable(f"the live view needs rerun-sdk, which is not installed ({exc}): {INSTALL_HINT}") from None
    return rerun


def _viewer_executable() -> str | None:
    here = Path(sys.executable).parent / "rerun"  # the venv's, when it is not on PATH
    return str(here) if here.exists() else None


def check_screen() -> None:
    """:class:`LiveViewUnavailable` where a local viewer could not open a window (Linux without X or Wayland)."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise LiveViewUnavailable(
            "--display: no screen here to open a rerun viewer on (DISPLAY is not set); stream to a viewer on "
            f"another machine with --display rerun+http://HOST:{VIEWER_PORT}/proxy, or record with --save-rrd")


def spawn_viewer(port: int = VIEWER_PORT) -> str:
    """Start a local rerun viewer (none if one already listens on ``port``); the URL to stream to."""
    rr = require_rerun()
    check_screen()
    # rerun ignores spawn() without an enabled recording: a throwaway one (nothing is logged to it)
    rr.spawn(port=port, connect=False, executable_path=_viewer_executable(),
             recording=rr.RecordingStream("vlash", recording_id="spawn"))
    return f"rerun+http://127.0.0.1:{port}/proxy"


class LiveView:
    """One robot's live view: rerun sinks (a viewer and/or an ``.rrd`` file) fed by a background thread.

    ``display``: None, ``spawn`` or a viewer URL; ``save_path``: an ``.rrd`` file. Robots of one launch
    share ``recording_id``; each robot is its own rerun application (``vlash/ROBOT``, with its layout).
    """

    def __init__(
        self,
        robot_id: str,
        joint_names: Sequence[str],
        cameras: Sequence[str],
        fps: float,
        action_kind: str = "absolute",
        *,
        display: str | None = None,
        save_path: str | Path | None = None,
        recording_id: str | None = None,
        image_hz: float = 10.0,
        queue_size: int = 1024,
        max_pending_ops: int = 4096,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        rr = require_rerun()
        self.robot, self.joints, self.cameras = robot_id, list(joint_names), list(cameras)
        self.fps, self.action_kind, self._clock = float(fps), action_kind, clock
        self.dt = 1.0 / self.fps
        self._image_every = max(1, round(self.fps / image_hz)) if image_hz > 0 else 0
        self.counters: dict[str, int] = {"items": 0, "dropped": 0, "ops": 0, "ops_dropped": 0, "errors": 0}
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._ops: deque[Callable[[], None]] = deque()
        self._max_ops = max_pending_ops
        self._window_end = 0.0  # the worker runs rerun calls only before this (monotonic) time
        self._rows: list[tuple] = []  # ticks not yet sent as columns
        self._rows_every = max(1, round(self.fps * 0.2))  # one batch of columns per ~0.2 s
        self._sent: dict[int, Observation] = {}  # obs seq -> what this process sent (for the conditioned state)
        self._futures: dict[int, tuple[int, np.ndarray]] = {}  # installed chunk id -> (start step, conditioned)
        self._estimators: dict[str, Any] = {}
        self._stalled = False
        self._closed = False
        self.rec = rr.RecordingStream(f"vlash/{robot_id}", recording_id=recording_id)
        sinks = []
        if display is not None:
            url = spawn_viewer() if display == SPAWN else parse_display(display)
            sinks.append(rr.GrpcSink(url))
        if save_path is not None:
            Path(save_path).parent.mkdir(parents=True, exist_ok=True)
            sinks.append(rr.FileSink(str(save_path)))
        if not sinks:
            raise ValueError("a live view needs a display or a save path")
        rr.set_sinks(*sinks, recording=self.rec)
        self._rr = rr
        self._static()
        self._warm_up()
        self._worker = threading.Thread(target=self._run, name=f"live-view-{robot_id}", daemon=True)
        self._worker.start()

    # --- the control thread's side: copy, enqueue, never wait ----------------------------------
    def _put(self, item: tuple) -> None:
        try:
            self._queue.put_nowait(item)
            self.counters["items"] += 1
        except queue.Full:
            self.counters["dropped"] += 1

    def tick(self, record: Mapping[str, Any], images: Mapping[str, np.ndarray], switch: Switch | None,
             now: float) -> None:
        """One executed tick (the control loop's record, the reading's images, the switch it made, if any)."""
        step = int(record["step"])
        frames = None
        if self._image_every and step % self._image_every == 0 and images:
            frames = {k: np.array(v, copy=True) for k, v in images.items()}  # the driver may reuse its buffers
        self._put(("tick", now, step, float(record["lateness_ms"]), np.array(record["state"], np.float32),
                   np.array(record["action"], np.float32), int(record["chunk"]), bool(record["stall"]),
                   int(record["delay_steps"]), switch, frames))

    def sent(self, obs: Observation) -> None:
        """An observation this process sent (a frozen message: kept by reference)."""
        self._put(("sent", obs))

    def chunk(self, chunk: ActionChunk, installed: Installed, step: int, rtt_ms: float,
              plan: tuple[int, np.ndarray]) -> None:
        """A chunk installed at ``step``, and the queued plan ``(first step, rows)`` after it."""
        self._put(("chunk", chunk, installed, step, rtt_ms, plan))

    # --- the worker ----------------------------------------------------------------------------
    def _run(self) -> None:
        stopping = False
        while not stopping:
            if self._ops and self._clock() < self._window_end:
                self._do(self._ops.popleft())
                continue
            try:  # out of the window or nothing to do: wait for the next tick
                item = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            while item is not None:
                if item is _STOP:
                    stopping = True
                    break
                self._take(item)
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    item = None
        self._flush_rows()
        while self._ops:  # the loop is over: no tick to make way for
            self._do(self._ops.popleft())

    def _do(self, op: Callable[[], None]) -> None:
        try:
            op()
            self.counters["ops"] += 1
        except Exception as exc:  # a rerun call that fails must not end the view (nor the robot)
            self.counters["errors"] += 1
            if self.counters["errors"] == 1:
                log.warning("live view of %s: a rerun call failed (%r); further failures are only counted", self.robot, exc)

    def _add(self, op: Callable[[], None]) -> None:
        if len(self._ops) >= self._max_ops:
            self.counters["ops_dropped"] += 1
        else:
            self._ops.append(op)

    def _take(self, item: tuple) -> None:
        kind = item[0]
        if kind == "tick":
            _, now, step, lateness, state, action, chunk_id, stall, delay, switch, frames = item
            self._window_end = now + 0.5 * self.dt
            self._rows.append((step, lateness, state, action, chunk_id, stall, delay))
            if len(self._rows) >= self._rows_every:
                self._flush_rows()
            if stall != self._stalled:
                self._stalled = stall
                self._add(self._text_op(step, "events", "stall: the robot holds (no action queued)" if stall
                                        else "stall over: executing again", "WARN" if stall else "INFO"))
            if switch is not None:
                self._add(self._switch_op(step, switch, state))
            for name, image in (frames or {}).items():
                self._add(self._image_op(step, name, image))
        elif kind == "sent":
            obs = item[1]
            self._sent[obs.seq] = obs
            if len(self._sent) > 64:
                for old in sorted(self._sent)[:-32]:
                    del self._sent[old]
        elif kind == "chunk":
            _, chunk, installed, step, rtt_ms, plan = item
            self._on_chunk(chunk, installed, step, rtt_ms, plan)

    # --- what the items become -----------------------------------------------------------------
    def _times(self, steps: Any) -> list:
        rr = self._rr
        steps = np.asarray(steps, np.int64)
        return [rr.TimeColumn("step", sequence=steps), rr.TimeColumn("time", duration=steps / self.fps)]

    def _at(self, step: int) -> None:
        self.rec.set_time("step", sequence=step)
        self.rec.set_time("time", duration=step / self.fps)

    def _flush_rows(self) -> None:
        if not self._rows:
            return
        rows, self._rows = self._rows, []
        rr, rec = self._rr, self.rec
        steps = [r[0] for r in rows]
        states = np.stack([r[2] for r in rows])
        actions = np.stack([r[3] for r in rows])
        series = {"timing/lateness_ms": [r[1] for r in rows], "chunk": [r[4] for r in rows],
                  "stall": [float(r[5]) for r in rows], "timing/delay_steps": [r[6] for r in rows]}
        for j, name in enumerate(self.joints):
            if j < states.shape[1]:
                series[f"joints/{name}/state"] = states[:, j]
            if j < actions.shape[1]:
                series[f"joints/{name}/target"] = actions[:, j]
        for path, values in series.items():
            self._add(lambda p=f"{self.robot}/{path}", v=values, t=steps: rr.send_columns(
                p, indexes=self._times(t), columns=rr.Scalars.columns(scalars=np.asarray(v, np.float64)), recording=rec))

    def _text_op(self, step: int, path: str, text: str, level: str = "INFO") -> Callable[[], None]:
        def op() -> None:
            self._at(step)
            self.rec.log(f"{self.robot}/{path}", self._rr.TextLog(text, level=level))
        return op

    def _image_op(self, step: int, name: str, image: np.ndarray) -> Callable[[], None]:
        def op() -> None:
            from vlash.jpeg import encode_rgb

            data = encode_rgb(np.ascontiguousarray(image), 85)
            if data is not None:
                self._at(step)
                self.rec.log(f"{self.robot}/camera/{name}", self._rr.EncodedImage(contents=data, media_type="image/jpeg"))
        return op

    def _switch_op(self, step: int, switch: Switch, measured: np.ndarray) -> Callable[[], None]:
        future = self._futures.pop(switch.to_chunk, None)
        text = f"chunk {switch.from_chunk} → {switch.to_chunk}: jump {switch.discontinuity:.4f}"
        if future is not None:
            start, state = future
            gap = float(np.max(np.abs(state - measured))) if state.shape == measured.shape else float("nan")
            text += f"; conditioned on ŝ[{start}], {gap:.4f} from the state measured at step {step}"

        def op() -> None:
            self._at(step)
            self.rec.log(f"{self.robot}/switch", self._rr.TextLog(text, level="INFO"))
            self.rec.log(f"{self.robot}/switch/jump", self._rr.Scalars(float(switch.discontinuity)))
        return op

    def _conditioned(self, chunk: ActionChunk) -> np.ndarray | None:
        """The state ``chunk`` was conditioned on: the one rule (:func:`plan_request`) applied to what was sent."""
        obs = self._sent.pop(chunk.obs_seq, None)
        if obs is None:
            return None
        name = chunk.estimator or "none"
        if name not in self._estimators:
            try:
                self._estimators[name] = make_estimator(name)
            except (TypeError, ValueError):  # e.g. 'model': it needs options only the server has
                self._estimators[name] = None
                self._add(self._text_op(chunk.obs_step, "events", f"conditioned state not shown: estimator {name!r} "
                                        "runs on the server with options this process does not have"))
        estimator = self._estimators[name]
        if estimator is None:
            return None
        try:
            plan = obs.plan if len(obs.plan) else np.zeros((0, len(obs.hold)), np.float32)
            request = plan_request(parse_mode(chunk.mode or "vlash"), estimator, obs.step, obs.state, obs.plan_start_step,
                                   plan, int(chunk.delay_steps), obs.hold, self.action_kind, obs.extras)
        except (TypeError, ValueError):
            return None
        return np.asarray(request.state, np.float32)

    def _on_chunk(self, chunk: ActionChunk, installed: Installed, step: int, rtt_ms: float,
                  plan: tuple[int, np.ndarray]) -> None:
        rr, rec, robot = self._rr, self.rec, self.robot
        future = self._conditioned(chunk)
        if future is not None:
            self._futures[installed.chunk_id] = (installed.start_step, future)
            while len(self._futures) > 64:
                del self._futures[min(self._futures)]
        first, rows = plan
        rows = np.asarray(rows, np.float32)

        def op() -> None:
            self._at(step)
            rec.log(f"{robot}/timing/rtt_ms", rr.Scalars(float(rtt_ms)))
            if len(rows):
                ahead = np.arange(first, first + len(rows), dtype=np.float32) - step
                strips = [np.stack([ahead, -rows[:, j]], axis=1) for j in range(rows.shape[1])]
                names = [self.joints[j] if j < len(self.joints) else str(j) for j in range(rows.shape[1])]
                rec.log(f"{robot}/plan", rr.LineStrips2D(strips, labels=names))
            if future is not None:
                self._at(installed.start_step)
                for j, name in enumerate(self.joints[: len(future)]):
                    rec.log(f"{robot}/joints/{name}/conditioned", rr.Scalars(float(future[j])))
        self._add(op)

    def _static(self) -> None:
        """Series styles and the default layout (sent once, before any data)."""
        rr, rec, robot = self._rr, self.rec, self.robot
        for name in self.joints:
            rec.log(f"{robot}/joints/{name}/state", rr.SeriesLines(names="measured", colors=[31, 119, 180]), static=True)
            rec.log(f"{robot}/joints/{name}/target", rr.SeriesLines(names="target", colors=[255, 127, 14]), static=True)
            rec.log(f"{robot}/joints/{name}/conditioned",
                    rr.SeriesPoints(names="conditioned ŝ", colors=[44, 160, 44], markers="circle", marker_sizes=4.0),
                    static=True)
        rec.log(f"{robot}/switch/jump", rr.SeriesPoints(names="switch jump", markers="diamond", marker_sizes=4.0),
                static=True)
        rec.log(f"{robot}/stall", rr.SeriesLines(names="stall", colors=[148, 103, 189]), static=True)
        try:
            rr.send_blueprint(self._blueprint(), recording=rec)
        except Exception as exc:  # the layout is a convenience: rerun's own layout shows the same data
            log.warning("live view of %s: no layout sent (%r)", robot, exc)

    def _warm_up(self) -> None:
        """Build one of everything the worker logs, before the loop starts: the first of each (lazy imports,
        converters) costs milliseconds of interpreter time that must not land on an early tick."""
        from vlash.jpeg import encode_rgb

        rr = self._rr
        rr.Scalars.columns(scalars=np.zeros(2))
        self._times([0, 1])
        rr.EncodedImage(contents=encode_rgb(np.zeros((8, 8, 3), np.uint8), 85) or b"", media_type="image/jpeg")
        rr.TextLog("", level="INFO")
        rr.LineStrips2D([np.zeros((2, 2), np.float32)], labels=["x"])
        rr.Scalars(0.0)

    def _blueprint(self) -> Any:
        import rerun.blueprint as rrb

        robot = self.robot
        cameras = [rrb.Spatial2DView(origin=f"{robot}/camera/{c}", name=c) for c in self.cameras]
        left = rrb.Vertical(*cameras, rrb.Spatial2DView(origin=f"{robot}/plan", name="queued plan (x: steps ahead)"),
                            rrb.TextLogView(origin=f"{robot}", name="switches and stalls"))
        joints = rrb.Grid(*[rrb.TimeSeriesView(origin=f"{robot}/joints/{j}", name=j) for j in self.joints])
        right = rrb.Vertical(
            rrb.TimeSeriesView(origin=f"{robot}/timing", name="Δ (steps), round trip and lateness (ms)"),
            rrb.TimeSeriesView(contents=[f"{robot}/stall", f"{robot}/chunk", f"{robot}/switch/jump"],
                               name="stall, executed chunk, switch jumps"))
        return rrb.Blueprint(rrb.Horizontal(left, joints, right, column_shares=[1, 2, 1]), collapse_panels=True)

    # --- the end -------------------------------------------------------------------------------
    def close(self, timeout_s: float = 10.0) -> dict[str, int]:
        """Send what is queued, flush the sinks (the ``.rrd`` is complete after this); the counters."""
        if self._closed:
            return dict(self.counters)
        self._closed = True
        try:
            self._queue.put(_STOP, timeout=timeout_s)
        except queue.Full:
            self.counters["dropped"] += 1
        self._worker.join(timeout_s)
        try:
            try:
                self.rec.flush(timeout_sec=timeout_s)
            except TypeError:  # rerun before 0.25 flushes without a timeout
                self.rec.flush()
        except Exception as exc:  # a viewer that went away: the file sink still closes below
            self.counters["errors"] += 1
            log.warning("live view of %s: flushing failed (%r)", self.robot, exc)
        self.rec.disconnect()
        return dict(self.counters)
