"""Every benchmark module imports, and the scripts of benchmarks/ and examples/ import one another without a circle.

A benchmark CI does not run still fails CI when it no longer imports; a circle (a task module importing the script that
imports it) fails here before it can make the import order matter.
"""

import ast
import glob
import os
import subprocess
import sys

from import_graph import find_cycle

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FOLDERS = ("benchmarks", "examples")
MODULES = sorted(os.path.splitext(os.path.basename(p))[0] for p in glob.glob(os.path.join(ROOT, "benchmarks", "*.py")))


def local_imports(path: str, local: set[str]) -> set[str]:
    """The modules of `local` that the file at `path` imports anywhere (top level or inside a function)."""
    names = set()
    for node in ast.walk(ast.parse(open(path).read(), path)):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names & local


def import_graph(folders=FOLDERS) -> dict[str, set[str]]:
    """Script module -> the script modules it imports, over the folders put on `sys.path` together."""
    paths = {
        os.path.splitext(os.path.basename(p))[0]: p
        for folder in folders
        for p in glob.glob(os.path.join(ROOT, folder, "*.py"))
    }
    return {name: local_imports(path, set(paths)) - {name} for name, path in paths.items()}


def test_find_cycle_finds_a_circle_and_only_one():
    assert find_cycle({"run": {"tasks"}, "tasks": {"harness"}, "harness": set()}) is None
    assert find_cycle({"run": {"tasks"}, "tasks": {"run", "harness"}, "harness": set()}) == ["run", "tasks", "run"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_import_circle_in_benchmarks_or_examples():
    graph = import_graph()
    assert {"harness", "tasks", "_shared"} <= set(graph)
    assert "harness" in graph["run"] and "harness" in graph["convergence"]  # the graph sees in-package imports
    cycle = find_cycle(graph)
    assert cycle is None, f"import circle: {' -> '.join(cycle)}"


def test_every_benchmark_module_imports_as_its_script_does():
    """Each module in a fresh interpreter with only its own folder on the path, as `python3 benchmarks/x.py` runs it:
    an import that works only after another module changed `sys.path` fails here."""
    assert {"convergence", "device", "compile_levels", "suite", "harness"} <= set(MODULES)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"}
    runs = {
        name: subprocess.Popen(
            [sys.executable, "-c", f"import sys; sys.path[0] = {os.path.join(ROOT, 'benchmarks')!r}; import {name}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for name in MODULES
    }
    failed = {name: run.communicate(timeout=600)[1][-2000:] for name, run in runs.items()}
    failed = {name: error for name, error in failed.items() if runs[name].returncode}
    assert not failed, failed


def model_type_comparisons(path: str, model_types: set[str]) -> list[str]:
    """Comparisons in the file at `path` against a literal registered model type (`== "vit"`, `in ("bert", ...)`)."""
    found = []
    for node in ast.walk(ast.parse(open(path).read(), path)):
        if not isinstance(node, ast.Compare):
            continue
        for operand in (node.left, *node.comparators):
            items = operand.elts if isinstance(operand, (ast.Tuple, ast.List, ast.Set)) else [operand]
            literals = {item.value for item in items if isinstance(item, ast.Constant)}
            if literals & model_types:
                found.append(f"{os.path.relpath(path, ROOT)}:{node.lineno}")
    return found


def test_benchmarks_and_examples_ask_the_registry_for_model_types():
    from icpc_hf import REGISTRY

    scripts = [p for folder in FOLDERS for p in glob.glob(os.path.join(ROOT, folder, "*.py"))]
    found = [hit for path in scripts for hit in model_type_comparisons(path, set(REGISTRY))]
    assert not found, (
        "compare the registry's modality (registration_for(config).modality.name), not model types: " + ", ".join(found)
    )
