"""The package's shape: no import circle, no module over 300 lines, and the served core never reaching training code.

Imports are read from the source (top level and inside functions alike), so an import that only runs late still
counts: a circle made of deferred imports is a circle waiting for the day one of them moves to the top.
"""

import ast
from pathlib import Path

import pytest
from import_graph import find_cycle

import icpc_hf
from icpc_hf.registry import REGISTRATIONS

PACKAGE = Path(icpc_hf.__file__).parent
MODULES = {
    ".".join(("icpc_hf", *path.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(".__init__"): path
    for path in sorted(PACKAGE.rglob("*.py"))
}
MAX_LINES = 300


def imported_modules(name: str, path: Path) -> set[str]:
    """The package's modules that the module `name` (at `path`) imports, wherever in the file the import is."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(part for part in (base, node.module) if part)
            # `from . import x` imports the module x when there is one, else a name of the package
            targets = [
                f"{module}.{alias.name}" if f"{module}.{alias.name}" in MODULES else module for alias in node.names
            ]
        else:
            continue
        found |= {target for target in targets if target in MODULES}
    return found - {name}


GRAPH = {name: imported_modules(name, path) for name, path in MODULES.items()}


def test_the_graph_sees_relative_absolute_and_deferred_imports():
    assert "icpc_hf.registry" in GRAPH["icpc_hf.patching"]  # from .registry import ...
    assert "icpc_hf.config" in GRAPH["icpc_hf.training.calibration.thresholds"]  # from ...config import ...
    assert "icpc_hf.training.schedules.adaptive" in GRAPH["icpc_hf.training.schedules"]  # from . import adaptive
    assert "icpc_hf.training.callback" in GRAPH["icpc_hf"]


def test_no_import_circle_in_the_package():
    cycle = find_cycle(GRAPH)
    assert cycle is None, f"import circle: {' -> '.join(cycle)}"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_is_over_300_lines(name):
    lines = MODULES[name].read_text().count("\n")
    assert lines <= MAX_LINES, f"{MODULES[name].relative_to(PACKAGE)} has {lines} lines: give one of its jobs a module"


def reached_from(name: str) -> set[str]:
    """Every module of the package that importing `name` imports, directly or through others."""
    reached, waiting = set(), [name]
    while waiting:
        for target in GRAPH[waiting.pop()] - reached:
            reached.add(target)
            waiting.append(target)
    return reached


@pytest.mark.parametrize("registration", REGISTRATIONS, ids=lambda registration: registration.modality.name)
def test_what_a_served_folder_holds_never_reaches_training_code(registration):
    """A Hub folder holds a modality's module and what it imports (the export follows the imports): all of it flat
    modules, none under training/, and not the package's `__init__`, which imports training code."""
    root = registration.pipeline_class.__module__
    served = {root} | reached_from(root)
    assert {"icpc_hf.config", "icpc_hf.registry", "icpc_hf.patching"} <= served
    assert all(MODULES[name].parent == PACKAGE and MODULES[name].name != "__init__.py" for name in served), served
