"""`vlash eval --video 2` writes one playable MP4 per episode: one frame per executed step, with the overlay."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from vlash.experiments.videos import PALETTE, PANEL, VIDEO_SIZE, WAIT_RGB

REPO = Path(__file__).resolve().parents[2]
VLASH = [sys.executable, "-m", "vlash.cli", "eval"]


def decoded(path: Path) -> tuple[str, list[np.ndarray]]:
    """The codec and every frame (RGB), decoded with PyAV."""
    import av

    with av.open(str(path)) as container:
        codec = container.streams.video[0].codec_context.name
        return codec, [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def bar(frame: np.ndarray) -> np.ndarray:
    """The mean colour of the bar along the top of a frame."""
    return frame[1:5, 8:-8].reshape(-1, 3).mean(axis=0)


def test_eval_video_writes_one_mp4_per_episode_with_a_frame_per_step(tmp_path: Path) -> None:
    import cv2

    out = tmp_path / "eval"
    cmd = VLASH + ["--tasks", "reach", "--modes", "vlash", "--delays", "2", "--episodes", "2", "--video", "2",
                   "--workers", "1", "--batch", "2", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    [record] = json.loads((out / "results.json").read_text())
    names = ["reach-vlash-delay2-seed0.mp4", "reach-vlash-delay2-seed1.mp4"]
    assert sorted(p.name for p in (out / "videos").iterdir()) == names
    videos = record["videos"]
    assert [v["file"] for v in videos] == names and [v["seed"] for v in videos] == record["seeds"]
    # the videos' episodes are the cell's (run again one at a time, they equal the batched run)
    assert [int(v["success"]) for v in videos] == record["outcomes"]
    assert sum(v["steps"] for v in videos) == record["mean_steps"] * 2 == record["successes"] * record["mean_steps"]
    for video in videos:
        path = out / "videos" / video["file"]
        codec, frames = decoded(path)
        assert codec in ("h264", "mpeg4")
        assert len(frames) == video["steps"]
        assert all(f.shape == (VIDEO_SIZE + PANEL, VIDEO_SIZE, 3) for f in frames)
        # Δ = 2: steps 0 and 1 wait for the first chunk (grey bar), step 2 runs chunk 0 (its colour)
        assert np.allclose(bar(frames[0]), WAIT_RGB, atol=25) and np.allclose(bar(frames[1]), WAIT_RGB, atol=25)
        assert np.allclose(bar(frames[2]), PALETTE[0], atol=25)
        capture = cv2.VideoCapture(str(path))  # a second decoder (OpenCV's FFmpeg) plays it too
        try:
            ok, first = capture.read()
            assert ok and first.shape == (VIDEO_SIZE + PANEL, VIDEO_SIZE, 3)
            assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == video["steps"]
        finally:
            capture.release()


def test_a_negative_video_count_is_refused(tmp_path: Path) -> None:
    proc = subprocess.run(VLASH + ["--video", "-1", "--out", str(tmp_path)], capture_output=True, text=True,
                          timeout=120, cwd=REPO)
    assert proc.returncode == 2 and proc.stderr.strip() == "vlash eval: --video must be >= 0"
