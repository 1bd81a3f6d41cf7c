"""Transformers' own common model tests (ModelTesterMixin) run unpatched and with every model patched at construction,
for ViT, DeiT, DINOv2, BERT, AST and VideoMAE (test_common.py); exits 1 on a test passing unpatched and not patched.

`python3 .ci/transformers_common/run.py [pytest options]`. The test file of the mixin, tests/test_modeling_common.py,
is not in the transformers wheel; it is taken from the sdist of the installed version on PyPI (`pip download`) into
a temporary folder, never into the repository. The sdist has no tests/models/ (the per-model testers: test_common.py
has this project's) and neither tests/exporters/ nor tests/generation/, whose `ExportTesterMixin` (torch.export
tests) and `GenerationTesterMixin` (`generate` tests, for models that generate: none here) the mixin imports: they
are stubbed as empty classes, so those tests are not run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import transformers

HERE = Path(__file__).resolve().parent
REPOSITORY = HERE.parent.parent
"""pytest's root for these tests (their node ids start at .ci/)."""
SELECTION = "not fp16 and not bf16"
"""Every test of the mixin but the half-precision comparisons of eager and SDPA attention (32 of 100 per type; what
CPU kernels give in fp16 and bf16 is not what the mixin's tolerances are for), within CI's time on two cores."""
STUBS = {"exporters/test_export.py": "ExportTesterMixin", "generation/test_utils.py": "GenerationTesterMixin"}


def fetch_common_tests(folder: Path) -> None:
    """`folder/transformers_tests/`: the sdist's test_modeling_common.py, with the two mixins it imports stubbed."""
    version = transformers.__version__
    command = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:"]
    subprocess.run([*command, f"transformers=={version}", "-d", str(folder)], check=True)
    package = folder / "transformers_tests"
    with tarfile.open(folder / f"transformers-{version}.tar.gz") as sdist:
        source = sdist.extractfile(f"transformers-{version}/tests/test_modeling_common.py")
        if source is None:
            raise SystemExit(f"The transformers {version} sdist has no tests/test_modeling_common.py.")
        package.mkdir()
        (package / "test_modeling_common.py").write_bytes(source.read())
    (package / "__init__.py").write_text("")
    for path, name in STUBS.items():
        (package / path).parent.mkdir(exist_ok=True)
        (package / path).parent.joinpath("__init__.py").write_text("")
        (package / path).write_text(f"class {name}:\n    pass  # not in the sdist: these tests are not run\n")


def run(folder: Path, patched: bool, targets: list[str], name: str) -> subprocess.Popen:
    """pytest on `targets`, in the background; its log and outcomes go to `folder/name.*`."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")])),
        "ICPC_PATCHED": "1" if patched else "0",
        "ICPC_OUTCOMES": str(folder / f"{name}.json"),
        "OMP_NUM_THREADS": "1",  # the two runs share the machine's cores
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_VERBOSITY": "error",
    }
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "ignore", "--tb=line"]
    command += targets
    log = open(folder / f"{name}.log", "w", encoding="utf-8")  # noqa: SIM115 -- closed when the process is
    return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=folder)


def run_both(folder: Path, targets: list[str], prefix: str = "") -> dict[str, dict[str, str]]:
    """Each test's outcome, unpatched and patched (the two runs side by side)."""
    runs = {label: run(folder, label == "patched", targets, prefix + label) for label in ("unpatched", "patched")}
    outcomes = {}
    for label, process in runs.items():
        process.wait()
        path = folder / f"{prefix}{label}.json"
        if not path.exists():
            print((folder / f"{prefix}{label}.log").read_text()[-5000:])
            raise SystemExit(f"The {label} run of Transformers' common tests reported no outcomes.")
        outcomes[label] = json.loads(path.read_text())
    return outcomes


def regressions_of(outcomes: dict[str, dict[str, str]]) -> list[str]:
    before, after = outcomes["unpatched"], outcomes["patched"]
    return sorted(test for test, outcome in before.items() if outcome == "passed" and after.get(test) != "passed")


def main(options: list[str]) -> int:
    """`options`: more pytest options (a `-k` replaces the selection)."""
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        fetch_common_tests(folder)
        outcomes = run_both(folder, [str(HERE / "test_common.py"), "-k", SELECTION, *options])
        for label, outcome in outcomes.items():
            counts = {o: list(outcome.values()).count(o) for o in ("passed", "failed", "skipped")}
            print(f"Transformers common tests, {label}: " + ", ".join(f"{n} {o}" for o, n in counts.items()))
        if "passed" not in outcomes["unpatched"].values():
            raise SystemExit("No common test passed unpatched: the comparison would prove nothing.")
        regressions = regressions_of(outcomes)
        if regressions:  # once more apart from the rest: a test failing only after another test failed is not one
            print((folder / "patched.log").read_text()[-8000:])
            regressions = regressions_of(run_both(folder, [str(REPOSITORY / t) for t in regressions], "again-"))
        for test in regressions:
            print(f"REGRESSION (passes unpatched, not patched, also run apart): {test}")
        total = len(outcomes["unpatched"])
        print(f"Transformers common tests: {len(regressions)} of {total} pass unpatched and not patched")
        return 1 if regressions else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
