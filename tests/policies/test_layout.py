"""Where things live in ``policies/``: cheap imports, no import circle, LeRobot's keys imported."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from vlash.cli import main as vlash_main

ROOT = Path(__file__).resolve().parents[2]
POLICIES = ROOT / "policies"
# modules whose import must not load torch (the adapter is the one that does)
CHEAP = (
    "policies",
    "policies.latency",
    "policies.lerobot_data",
    "policies.loading",
    "policies.offsets",
    "policies.policy_setup",
    "policies.record",
    "policies.testing",
    "policies.train",
    "policies.train_options",
    "vlash.commands.record",
    "vlash.commands.train",
)


def _imported_policies_modules(path: Path) -> set[str]:
    """Every ``policies.*`` module ``path`` imports, at any depth (function bodies, TYPE_CHECKING)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("policies."):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("policies."))
    return found


def test_importing_the_light_modules_loads_no_torch() -> None:
    code = f"import sys\nfor m in {CHEAP!r}: __import__(m)\nprint(sorted(m for m in ('torch', 'lerobot') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_policies_modules_import_each_other_one_way() -> None:
    graph = {f"policies.{p.stem}": _imported_policies_modules(p) for p in POLICIES.glob("*.py")}
    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in graph.get(start, ()):
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    circles = sorted(m for m in graph if reaches(m, m, set()))
    assert circles == []


def test_lerobot_keys_are_not_redefined() -> None:
    from lerobot.utils import constants

    keys = {
        v for k, v in vars(constants).items() if k.isupper() and isinstance(v, str) and v.startswith(("observation", "action", "next."))
    }
    keys |= {constants.OBS_IMAGES + "."}
    redefined = []
    for path in POLICIES.glob("*.py"):
        for node in ast.parse(path.read_text()).body:
            value = getattr(node, "value", None)
            if isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(value, ast.Constant) and value.value in keys:
                redefined.append(f"{path.name}:{node.lineno} {value.value!r}")
    assert redefined == []


@pytest.mark.parametrize("command", ["train", "record"])
def test_the_commands_live_in_the_cli_layer(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    from vlash.cli import COMMANDS

    assert COMMANDS[command][0] == f"vlash.commands.{command}"
    with pytest.raises(SystemExit) as exit_info:
        vlash_main([command, "--help"])
    assert exit_info.value.code == 0 and "--out" in capsys.readouterr().out


def test_bad_camera_map_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["train", "--dataset", str(tmp_path), "--out", str(tmp_path / "run"), "--camera-map", "front"]
    assert vlash_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err == "vlash train: --camera-map expects SRC=DST pairs, got 'front'"
    assert not (tmp_path / "run").exists()
