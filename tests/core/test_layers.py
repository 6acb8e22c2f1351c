"""The layers: the runtime core imports no concrete policy, sim or robot, not even by factory string.

Scans the source (imports anywhere in a module, function bodies included, and string constants
that look like module or factory paths), so a lazy import or a ``"sim.x:y"`` default fails here.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = ("policies", "sim", "robot_drivers")
UPPER = ("vlash.experiments", "vlash.commands", "vlash.cli")  # layers above the core
PATH_LIKE = re.compile(r"^(policies|sim|robot_drivers)(\.\w+)*(:\w+)?$")


def modules(folder: str, exclude: tuple[str, ...] = ()) -> list[Path]:
    files = sorted((ROOT / folder).rglob("*.py"))
    return [f for f in files if not any(f.relative_to(ROOT).as_posix().startswith(e) for e in exclude)]


def core_modules() -> list[Path]:
    return modules("vlash", exclude=("vlash/experiments/", "vlash/commands/", "vlash/cli.py"))


def imported(tree: ast.AST) -> list[str]:
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


def path_strings(tree: ast.AST) -> list[str]:
    """String constants naming a plug-in module or factory (``"sim.experts:make_expert"``, ``"policies.x"``)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and PATH_LIKE.match(node.value):
            if "." in node.value or ":" in node.value:
                found.append(node.value)
    return found


def offenders(files: list[Path], forbidden: tuple[str, ...], strings: bool) -> list[str]:
    bad = []
    for path in files:
        tree = ast.parse(path.read_text(), str(path))
        rel = path.relative_to(ROOT).as_posix()
        bad += [f"{rel}: imports {name}" for name in imported(tree)
                if any(name == f or name.startswith(f + ".") for f in forbidden)]
        if strings:
            bad += [f"{rel}: names {s!r}" for s in path_strings(tree)]
    return bad


def test_the_scan_finds_what_it_is_meant_to_find(tmp_path):
    """The scanner itself: a lazy import and a factory-path default are both caught."""
    sample = tmp_path / "sample.py"
    sample.write_text('def f():\n    import sim.arm\n    from policies import latency\n\nPOLICY = "sim.experts:make_expert"\n')
    tree = ast.parse(sample.read_text())
    assert imported(tree) == ["sim.arm", "policies"]
    assert path_strings(tree) == ["sim.experts:make_expert"]


def test_the_core_is_the_ground_floor():
    assert len(core_modules()) >= 15  # the scan sees the runtime
    assert offenders(core_modules(), PLUGINS + UPPER, strings=True) == []


def test_the_contracts_import_only_the_standard_library_and_numpy():
    tree = ast.parse((ROOT / "vlash" / "contracts.py").read_text())
    assert {name.split(".")[0] for name in imported(tree)} <= {"__future__", "collections", "dataclasses", "typing", "numpy"}


def test_experiments_sit_on_the_core_not_on_the_cli():
    assert offenders(modules("vlash/experiments"), ("vlash.commands", "vlash.cli"), strings=False) == []


@pytest.mark.parametrize("plugin", PLUGINS)
def test_plugins_plug_into_the_core_and_not_into_each_other_or_the_layers_above(plugin):
    others = tuple(p for p in PLUGINS if p != plugin)
    assert offenders(modules(plugin), others + UPPER, strings=False) == []
