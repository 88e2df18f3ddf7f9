"""Security invariants that hold for every line of the package (issue 8).

Checked on the source itself, so a new call added anywhere is covered without a new test.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "workflow_scripts"


def _all_calls():
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Call):
                yield path, node


def _calls(name: str):
    for path, node in _all_calls():
        func = node.func
        called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if called == name:
            yield path, node


def _keyword(node: ast.Call, name: str):
    return next((kw.value for kw in node.keywords if kw.arg == name), None)


def test_every_torch_load_is_weights_only() -> None:
    loads = list(_calls("load"))
    torch_loads = [
        (p, n)
        for p, n in loads
        if isinstance(n.func, ast.Attribute) and getattr(n.func.value, "id", "") == "torch"
    ]
    assert torch_loads, "expected torch.load calls (optimizer state, .bin checkpoints)"
    for path, node in torch_loads:
        value = _keyword(node, "weights_only")
        assert isinstance(value, ast.Constant) and value.value is True, f"{path}:{node.lineno}"


def test_remote_code_is_never_trusted() -> None:
    assert list(_calls("from_pretrained")), "expected from_pretrained calls"
    for path, node in _all_calls():  # any call that takes the keyword at all: from_pretrained, pipeline ...
        value = _keyword(node, "trust_remote_code")
        assert value is None or (isinstance(value, ast.Constant) and value.value is False), (
            f"{path}:{node.lineno}"
        )
    source = "".join(p.read_text() for p in PACKAGE.rglob("*.py"))
    assert not re.search(r"trust_remote_code\s*=\s*True", source)


def test_time_series_checkpoints_run_no_code_of_their_own() -> None:
    """Chronos-Bolt's class lives in the chronos-forecasting package: its encoder is read into
    transformers' T5EncoderModel instead, and nothing imports that package (issue 28)."""
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                modules = [node.module or ""]
            else:
                continue
            assert not any(m == "chronos" or m.startswith(("chronos.", "autogluon")) for m in modules), (
                f"{path}:{node.lineno}"
            )


def test_no_pickle_based_serialisation() -> None:
    source = "".join(path.read_text() for path in PACKAGE.rglob("*.py"))
    assert "import pickle" not in source and "torch.save(model" not in source
    assert list(_calls("save_file")), "checkpoints are written with safetensors' save_file"
