"""Rollout videos for ``vlash eval --video N``: the first N episodes of a cell as H.264 MP4s.

The episodes are run once more, one at a time (:func:`vlash.virtual_time.run_episode`, the runner the
batched one equals), on the cell's task made with ``render_mode="rgb_array"``; a wrapper keeps the
front camera's frame after every step, so a video has exactly one frame per executed step. Below
each frame a panel says what the robot executed: the chunk and row, a hold (waiting for the first
chunk, or a stall), a chunk switch and its jump, and the outcome at the end; a bar along the top
takes the chunk's colour, red during a stall. Encoded with PyAV (FFmpeg), the encoder LeRobot's
datasets use: H.264 in MP4 where FFmpeg has an H.264 encoder, else MPEG-4 part 2.
"""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

CODECS = ("libx264", "h264", "libopenh264", "mpeg4")  # the first one FFmpeg has is used
VIDEO_SIZE = 256  # frame side in pixels (rendered at it when the policy sees no camera, else scaled to it)
PANEL = 60  # pixels of text below the frame (three lines)
STALL_RGB = (214, 39, 40)
WAIT_RGB = (127, 127, 127)
PALETTE = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (148, 103, 189), (140, 86, 75), (23, 190, 207))


class FrameRecorder(gym.Wrapper):
    """Keeps ``env.render()`` after every ``step`` (cleared by ``reset``)."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.frames: list[np.ndarray] = []

    def reset(self, **kwargs: Any):
        self.frames = []
        return self.env.reset(**kwargs)

    def step(self, action):
        out = self.env.step(action)
        self.frames.append(np.asarray(self.env.render(), np.uint8))
        return out


def encoder() -> str:
    """The first of :data:`CODECS` this FFmpeg (PyAV's) can encode with."""
    import av

    for name in CODECS:
        try:
            av.codec.Codec(name, "w")
            return name
        except Exception:  # PyAV raises UnknownCodecError (its class moved between versions)
            continue
    raise RuntimeError(f"PyAV's FFmpeg has none of the encoders {', '.join(CODECS)}")


def write_mp4(path: Path, frames: list[np.ndarray], fps: float) -> Path:
    """``frames`` (RGB uint8, all one even size) as an MP4 at ``fps``; FFmpeg's own log stays quiet."""
    import av

    if not frames:
        raise ValueError(f"no frames to write to {path}")
    height, width = frames[0].shape[:2]
    path.parent.mkdir(parents=True, exist_ok=True)
    codec = encoder()
    av.logging.set_level(av.logging.ERROR)
    with av.open(str(path), "w", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": "23", "preset": "veryfast"}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")))
        container.mux(stream.encode())
    return path


def step_labels(record: Any) -> list[tuple[str, str, tuple[int, int, int]]]:
    """Per executed step of an :class:`~vlash.virtual_time.EpisodeRecord`: what it executed, a switch near it
    (shown for 5 frames) and the bar colour."""
    chunk_ids, rows = np.asarray(record.chunk_ids), np.asarray(record.rows)
    started = np.flatnonzero(chunk_ids >= 0)
    first = int(started[0]) if len(started) else len(chunk_ids)
    switches = {s.step: s for s in record.switches}
    labels = []
    for step, (chunk, row) in enumerate(zip(chunk_ids, rows, strict=True)):
        near = [s for k, s in switches.items() if 0 <= step - k < 5]
        switch = f"switch {near[0].from_chunk}->{near[0].to_chunk}, jump {near[0].discontinuity:.3f}" if near else ""
        if chunk < 0:
            labels.append(("waiting for the first chunk" if step < first else "STALL (nothing queued)",
                           switch, WAIT_RGB if step < first else STALL_RGB))
        else:
            labels.append((f"chunk {chunk}, row {row}", switch, PALETTE[int(chunk) % len(PALETTE)]))
    return labels


def annotate(frame: np.ndarray, lines: tuple[str, str, str], colour: tuple[int, int, int]) -> np.ndarray:
    """The frame scaled to :data:`VIDEO_SIZE`, a coloured bar along its top and three lines of text below
    (the second, what was executed, in the bar's colour)."""
    import cv2

    image = np.asarray(frame, np.uint8)
    if image.shape[:2] != (VIDEO_SIZE, VIDEO_SIZE):
        image = cv2.resize(image, (VIDEO_SIZE, VIDEO_SIZE), interpolation=cv2.INTER_LINEAR)
    out = np.full((VIDEO_SIZE + PANEL, VIDEO_SIZE, 3), 255, np.uint8)
    out[:VIDEO_SIZE] = image
    out[:6] = colour
    font = cv2.FONT_HERSHEY_SIMPLEX
    colours = ((0, 0, 0), colour if colour != WAIT_RGB else (90, 90, 90), (0, 0, 0))
    for i, (text, rgb) in enumerate(zip(lines, colours, strict=True)):
        cv2.putText(out, text, (4, VIDEO_SIZE + 16 + 18 * i), font, 0.4, rgb, 1, cv2.LINE_AA)
    return out


def video_name(task: str, mode: str, delay: int, seed: int, policy: str = "expert") -> str:
    """``TASK-MODE-delayΔ-seedS.mp4`` (a checkpoint's folder name added for a policy other than the expert)."""
    name = f"{task}-{mode}-delay{delay}-seed{seed}"
    if policy != "expert":
        name += "-" + re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(policy).name or "policy")
    return name + ".mp4"


def record_videos(cell: Any, policy: Any, config: Any, make_env: Any, folder: Path) -> list[dict[str, Any]]:
    """Run the first ``cell.video_episodes`` seeds of ``cell`` once more with a camera and write their MP4s.

    ``make_env(**options)`` builds the cell's task; ``config`` is the cell's :class:`~vlash.virtual_time.RunConfig`.
    Returns one entry per video: file (relative to ``folder``), seed, steps (= frames) and success.
    """
    from vlash.virtual_time import run_episode

    options = {**cell.env_options, "render_mode": "rgb_array"}
    if not options.get("cameras"):  # the policy sees no image: render at the video's size directly
        options["image_size"] = VIDEO_SIZE
    env = FrameRecorder(make_env(**options))
    fps = float(getattr(env.unwrapped, "fps", 30.0))
    made = []
    try:
        for seed in cell.seeds[: cell.video_episodes]:
            record = run_episode(env, policy, config, seed=seed)
            outcome = "success" if record.success else "no success"
            frames = []
            for step, (frame, (done, switch, colour)) in enumerate(zip(env.frames, step_labels(record), strict=True)):
                title = f"{cell.task} {cell.mode} delta={cell.delay} seed {seed}"
                last = switch or (f"end: {outcome}" if step == record.steps - 1 else "")
                frames.append(annotate(frame, (title, f"step {step + 1}/{record.steps}: {done}", last), colour))
            name = video_name(cell.task, cell.mode, cell.delay, seed, cell.policy)
            write_mp4(folder / name, frames, fps)
            made.append({"file": name, "seed": seed, "steps": record.steps, "success": bool(record.success)})
    finally:
        env.close()
    return made
