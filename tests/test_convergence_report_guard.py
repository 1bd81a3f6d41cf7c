"""The convergence report never writes a page from no runs, or from fewer runs than the page it would replace."""

import os
import shutil
import sys

import pytest

BENCHMARKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks")
sys.path.insert(0, BENCHMARKS)
import convergence_report  # noqa: E402

STORED = os.path.join(BENCHMARKS, "results", "convergence", "image")


def copy_runs(folder, names):
    os.makedirs(folder / "image", exist_ok=True)
    for name in names:
        shutil.copy(os.path.join(STORED, name), folder / "image" / name)


def test_refuses_a_folder_without_runs_and_leaves_the_page(tmp_path):
    page = tmp_path / "convergence.md"
    page.write_text("the full record\n")
    with pytest.raises(SystemExit, match="nothing to report"):
        convergence_report.main(["--results", str(tmp_path / "empty"), "--output", str(page), "--quick"])
    assert page.read_text() == "the full record\n"


def test_refuses_fewer_runs_than_the_page_reports_unless_forced(tmp_path):
    full, partial = tmp_path / "full", tmp_path / "partial"
    copy_runs(full, ["baseline-s0.json", "baseline-s1.json"])
    copy_runs(partial, ["baseline-s0.json"])
    page = tmp_path / "out" / "convergence.md"
    convergence_report.main(["--results", str(full), "--output", str(page), "--quick"])
    written = page.read_text()
    assert "<!-- runs reported: 2 -->" in written
    with pytest.raises(SystemExit, match="fewer than the 2"):
        convergence_report.main(["--results", str(partial), "--output", str(page), "--quick"])
    assert page.read_text() == written
    convergence_report.main(["--results", str(partial), "--output", str(page), "--quick", "--force"])
    assert "<!-- runs reported: 1 -->" in page.read_text()
