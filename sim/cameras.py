"""Front and wrist cameras: where they are mounted, a fast offscreen renderer, and a render thread.

Rendering is headless (set ``MUJOCO_GL=egl`` before mujoco is imported; :func:`ensure_headless_gl` does
it when nothing else was chosen). Shadows, reflections and multisampling are off and the arm is drawn
with primitive geoms (group 1) instead of its meshes, which takes a 128x128 frame from ~25 fps to several
hundred on a CPU. A GL context belongs to the thread that created it, so :class:`RenderThread` creates its
renderer inside its own thread and renders snapshots of the simulation's state that the control thread
publishes; the control thread never waits for a frame.
"""

from __future__ import annotations

import atexit
import copy
import os
import threading
import time
import weakref

import numpy as np

CAMERA_NAMES = ("front", "wrist")


def ensure_headless_gl() -> None:
    """Default ``MUJOCO_GL`` to ``egl`` (must run before ``mujoco`` is first imported to take effect)."""
    os.environ.setdefault("MUJOCO_GL", "egl")


ensure_headless_gl()

import mujoco  # noqa: E402  (after MUJOCO_GL is set)

from sim.arm import MESH_GROUP, SIMPLE_GROUP  # noqa: E402


def look_at_quat(pos: np.ndarray, target: np.ndarray, up: np.ndarray = (0.0, 0.0, 1.0)) -> list[float]:
    """Quaternion of a MuJoCo camera at ``pos`` looking at ``target`` (cameras look along their -z)."""
    forward = np.asarray(target, float) - np.asarray(pos, float)
    z = -forward / np.linalg.norm(forward)
    x = np.cross(np.asarray(up, float), z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, np.column_stack([x, y, z]).ravel())
    return quat.tolist()


def validate_cameras(cameras: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Return ``cameras`` as a tuple, raising ``ValueError`` for names that are not mounted."""
    cameras = tuple(cameras)
    unknown = [c for c in cameras if c not in CAMERA_NAMES]
    if unknown or len(set(cameras)) != len(cameras):
        raise ValueError(f"cameras must be distinct names from {CAMERA_NAMES}, got {cameras}")
    return cameras


def add_cameras(spec: mujoco.MjSpec) -> None:
    """Mount the fixed ``front`` camera and the ``wrist`` camera (on the gripper, looking along the jaws)."""
    front_pos = np.array([0.7, 0.0, 0.5])
    spec.worldbody.add_camera(name="front", pos=front_pos.tolist(), quat=look_at_quat(front_pos, [0.16, 0.0, 0.08]),
                              fovy=50)
    wrist_pos = np.array([0.0, -0.05, -0.05])  # gripper body frame; the jaws point along -z
    spec.body("gripper").add_camera(
        name="wrist", pos=wrist_pos.tolist(), quat=look_at_quat(wrist_pos, [0.02, 0.0, -0.22], up=(1.0, 0.0, 0.0)),
        fovy=70,
    )
    spec.visual.headlight.ambient = [0.45, 0.45, 0.45]
    spec.visual.headlight.diffuse = [0.5, 0.5, 0.5]
    spec.worldbody.add_light(pos=[0.2, 0.0, 1.0], dir=[0.0, 0.0, -1.0], diffuse=[0.5, 0.5, 0.5], castshadow=False)


def scene_option(visual: str = "simple") -> mujoco.MjvOption:
    """Geom groups to draw: task and world geoms (group 0) plus the arm as primitives or as meshes."""
    if visual not in ("simple", "mesh"):
        raise ValueError(f"visual must be 'simple' or 'mesh', got {visual!r}")
    option = mujoco.MjvOption()
    option.geomgroup[:] = 0
    option.geomgroup[0] = 1
    option.geomgroup[SIMPLE_GROUP if visual == "simple" else MESH_GROUP] = 1
    option.sitegroup[:] = 0
    return option


_LIVE_RENDERERS: weakref.WeakSet = weakref.WeakSet()
_EXIT_HOOK = []


def _close_live_renderers() -> None:
    """Free GL contexts before the interpreter unloads EGL (otherwise their finalizers fail noisily)."""
    for renderer in list(_LIVE_RENDERERS):
        renderer.close()


def _register_exit_hook() -> None:
    # registered after mujoco's GL backend registered its own exit hook, so this one runs first
    if not _EXIT_HOOK:
        atexit.register(_close_live_renderers)
        _EXIT_HOOK.append(True)


class CameraRenderer:
    """Renders named cameras of one model at ``size`` x ``size`` with fast settings. One thread only."""

    def __init__(self, model: mujoco.MjModel, cameras: tuple[str, ...], size: int = 128, visual: str = "simple"):
        self.cameras = validate_cameras(cameras)
        if int(size) != size or not 8 <= size <= 1024:
            raise ValueError(f"image_size must be an integer in [8, 1024], got {size}")
        self.size = int(size)
        model.vis.global_.offwidth = max(model.vis.global_.offwidth, self.size)
        model.vis.global_.offheight = max(model.vis.global_.offheight, self.size)
        model.vis.quality.offsamples = 0
        self._renderer = mujoco.Renderer(model, height=self.size, width=self.size)
        flags = self._renderer.scene.flags
        for flag in (mujoco.mjtRndFlag.mjRND_SHADOW, mujoco.mjtRndFlag.mjRND_REFLECTION,
                     mujoco.mjtRndFlag.mjRND_SKYBOX, mujoco.mjtRndFlag.mjRND_FOG, mujoco.mjtRndFlag.mjRND_HAZE):
            flags[flag] = 0
        self._option = scene_option(visual)
        _LIVE_RENDERERS.add(self)
        _register_exit_hook()

    def render(self, data: mujoco.MjData) -> dict[str, np.ndarray]:
        """One (size, size, 3) uint8 frame per camera of the state in ``data`` (kinematics must be current)."""
        frames = {}
        for name in self.cameras:
            self._renderer.update_scene(data, camera=name, scene_option=self._option)
            frames[name] = self._renderer.render().copy()
        return frames

    def close(self) -> None:
        """Free the GL context (idempotent)."""
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
        _LIVE_RENDERERS.discard(self)


class RenderThread:
    """Renders the latest published simulation state in a background thread (latest frame wins).

    The control side calls :meth:`publish` after each physics update (it copies a few arrays under a lock)
    and :meth:`latest` to get the newest frames; neither waits for a render. Frames carry the control step
    of the state they show, so callers can tell how stale they are.
    """

    def __init__(
        self,
        model: mujoco.MjModel,
        cameras: tuple[str, ...],
        size: int = 128,
        visual: str = "simple",
        live_rgba: np.ndarray | None = None,
    ):
        self._model = copy.deepcopy(model)
        self._live_rgba = live_rgba  # the task's live colours (e.g. a lit pad), copied into each snapshot
        self._cameras = validate_cameras(cameras)
        self._size = size
        self._visual = visual
        self._cond = threading.Condition()
        self._snapshot: tuple | None = None
        self._frames: dict[str, np.ndarray] = {}
        self._frame_step = -1
        self._stop = False
        self._error: BaseException | None = None
        self.frames_rendered = 0
        self._thread = threading.Thread(target=self._run, name="sim-render", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def publish(self, data: mujoco.MjData, step: int) -> None:
        """Hand the renderer the state in ``data`` at control step ``step`` (replaces any unrendered one)."""
        snap = (data.qpos.copy(), data.mocap_pos.copy(), data.mocap_quat.copy(),
                self._live_rgba.copy() if self._live_rgba is not None else None, step)
        with self._cond:
            self._snapshot = snap
            self._cond.notify()

    def latest(self) -> tuple[dict[str, np.ndarray], int]:
        """The newest frames and the step they show ({} and -1 before the first render)."""
        with self._cond:
            if self._error is not None:
                raise RuntimeError("render thread failed") from self._error
            return self._frames, self._frame_step

    def wait_first_frame(self, timeout: float = 10.0) -> bool:
        """Block until a first frame exists (for ``connect()``, never for the control loop)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._frame_step < 0 and self._error is None and time.monotonic() < deadline:
                self._cond.wait(0.05)
            return self._frame_step >= 0

    def stop(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        renderer = None
        try:
            renderer = CameraRenderer(self._model, self._cameras, self._size, self._visual)
            data = mujoco.MjData(self._model)
            while True:
                with self._cond:
                    while self._snapshot is None and not self._stop:
                        self._cond.wait()
                    if self._stop:
                        return
                    qpos, mocap_pos, mocap_quat, rgba, step = self._snapshot
                    self._snapshot = None
                data.qpos[:] = qpos
                data.mocap_pos[:] = mocap_pos
                data.mocap_quat[:] = mocap_quat
                if rgba is not None:
                    self._model.geom_rgba[:] = rgba
                mujoco.mj_kinematics(self._model, data)
                mujoco.mj_camlight(self._model, data)
                frames = renderer.render(data)
                with self._cond:
                    self._frames, self._frame_step = frames, step
                    self.frames_rendered += 1
                    self._cond.notify_all()
        except BaseException as exc:  # reported to the control side by latest()
            with self._cond:
                self._error = exc
                self._cond.notify_all()
        finally:
            if renderer is not None:
                renderer.close()
