"""No code path of the runtime can unpickle: a static scan (``ast``) of every source file.

Fails on an import of a pickle-family module (``pickle``, ``cloudpickle``, ``dill``, ...), on
``torch.load`` (however imported) without ``weights_only=True``, on ``numpy.load(...,
allow_pickle=True)``, ``pandas.read_pickle`` and on importing those modules by name at run time.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("vlash", "policies", "sim", "robot_drivers")
PICKLERS = {"pickle", "cPickle", "_pickle", "cloudpickle", "dill", "shelve", "jsonpickle", "joblib"}
RISKY_CALLS = {("torch", "load"), ("numpy", "load"), ("pandas", "read_pickle")}


def _const(node: ast.AST | None) -> object:
    return node.value if isinstance(node, ast.Constant) else None


class Scanner(ast.NodeVisitor):
    """Collects ``(line, problem)`` for one module."""

    def __init__(self) -> None:
        self.problems: list[tuple[int, str]] = []
        self.modules: dict[str, str] = {}  # local name -> module it is bound to
        self.functions: dict[str, tuple[str, str]] = {}  # local name -> (module, function)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            root = alias.name.split(".")[0]
            if root in PICKLERS:
                self.problems.append((node.lineno, f"import {alias.name}"))
            self.modules[alias.asname or root] = alias.name if alias.asname else root
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        root = module.split(".")[0]
        for alias in node.names:
            if root in PICKLERS or alias.name in PICKLERS:
                self.problems.append((node.lineno, f"from {module} import {alias.name}"))
            self.functions[alias.asname or alias.name] = (root, alias.name)
        self.generic_visit(node)

    def _target(self, func: ast.AST) -> tuple[str, str] | None:
        """``(module, function)`` a call goes to, when it can be told statically."""
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            module = self.modules.get(func.value.id, func.value.id)
            return {"np": "numpy", "pd": "pandas"}.get(module, module).split(".")[0], func.attr
        if isinstance(func, ast.Name) and func.id in self.functions:
            return self.functions[func.id]
        return None

    def visit_Call(self, node: ast.Call) -> None:
        target = self._target(node.func)
        keywords = {k.arg: k.value for k in node.keywords}
        if target == ("torch", "load") and _const(keywords.get("weights_only")) is not True:
            self.problems.append((node.lineno, "torch.load without weights_only=True"))
        elif target == ("numpy", "load") and "allow_pickle" in keywords and _const(keywords["allow_pickle"]) is not False:
            self.problems.append((node.lineno, "numpy.load with allow_pickle"))
        elif target == ("pandas", "read_pickle"):
            self.problems.append((node.lineno, "pandas.read_pickle"))
        dynamic = target in {("importlib", "import_module")} or (isinstance(node.func, ast.Name) and node.func.id == "__import__")
        if dynamic and node.args and str(_const(node.args[0])).split(".")[0] in PICKLERS:
            self.problems.append((node.lineno, f"imports {_const(node.args[0])} by name"))
        self.generic_visit(node)


def scan_source(source: str, name: str = "<source>") -> list[str]:
    scanner = Scanner()
    scanner.visit(ast.parse(source, name))
    return [f"{name}:{line}: {problem}" for line, problem in scanner.problems]


def python_files() -> list[Path]:
    files = [p for folder in SCANNED for p in sorted((ROOT / folder).rglob("*.py"))]
    assert len(files) > 20, "the scan found too few files: is the layout still the same?"
    return files


def test_runtime_path_never_unpickles():
    problems = [p for path in python_files() for p in scan_source(path.read_text(), str(path.relative_to(ROOT)))]
    assert problems == [], "pickle in the runtime path:\n" + "\n".join(problems)


@pytest.mark.parametrize(
    "source",
    [
        "import pickle",
        "import cloudpickle as cp",
        "from dill import loads",
        "import torch\ntorch.load('x.pt')",
        "import torch as T\nT.load('x.pt', weights_only=False)",
        "from torch import load\nload('x.pt')",
        "from torch import load as L\nL('x.pt', map_location='cpu')",
        "import numpy as np\nnp.load('x.npy', allow_pickle=True)",
        "import pandas as pd\npd.read_pickle('x')",
        "import importlib\nimportlib.import_module('pickle')",
        "__import__('dill')",
    ],
)
def test_scanner_catches(source):
    assert scan_source(source), source


@pytest.mark.parametrize(
    "source",
    [
        "import torch\ntorch.load('x.pt', weights_only=True, map_location='cpu')",
        "import numpy as np\nnp.load('x.npy')",
        "from safetensors.torch import load_file\nload_file('x')",
        "import json\njson.load(open('x'))",
        "import msgpack\nmsgpack.unpackb(b'')",
    ],
)
def test_scanner_allows(source):
    assert scan_source(source) == [], source
