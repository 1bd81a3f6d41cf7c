"""Every benchmark module imports: a benchmark CI does not run still fails CI when it no longer imports."""

import glob
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODULES = sorted(os.path.splitext(os.path.basename(p))[0] for p in glob.glob(os.path.join(ROOT, "benchmarks", "*.py")))


def test_every_benchmark_module_imports():
    assert {"convergence", "device", "compile_levels", "suite"} <= set(MODULES)
    script = (f"import importlib, sys; sys.path[:0] = [{os.path.join(ROOT, 'benchmarks')!r}, "
              f"{os.path.join(ROOT, 'examples')!r}]\n"
              f"for name in {MODULES!r}:\n    importlib.import_module(name)\nprint('imported', len({MODULES!r}))")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"imported {len(MODULES)}" in result.stdout
