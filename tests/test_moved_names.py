"""Names that moved keep working for one release, with a FutureWarning that names the new place."""

import importlib
import os
import subprocess
import sys
import warnings

import pytest
from helpers import tiny_image_processor, tiny_vit

import icpc_hf
import icpc_hf.training.calibrate as new_place
from icpc_hf import ICPCConfig, patch_model, save_for_hub


def fresh_import(name: str):
    """Import `name` anew, so its import-time warning is raised again, and return the module and the warnings."""
    sys.modules.pop(name, None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = importlib.import_module(name)
    return module, [w for w in caught if issubclass(w.category, FutureWarning)]


def test_the_old_calibrate_module_warns_with_the_new_place_and_gives_the_same_objects():
    old, caught = fresh_import("icpc_hf.calibrate")
    assert len(caught) == 1 and "icpc_hf.training.calibrate" in str(caught[0].message)
    assert old.calibrate_thresholds is new_place.calibrate_thresholds
    assert old.Calibration is new_place.Calibration and old.main is new_place.main
    with pytest.raises(AttributeError):
        old.no_such_name  # noqa: B018 - the lookup itself is the test


def test_from_import_of_the_old_path_works():
    sys.modules.pop("icpc_hf.calibrate", None)
    with pytest.warns(FutureWarning, match="icpc_hf.training.calibrate"):
        from icpc_hf.calibrate import calibrate_thresholds
    assert calibrate_thresholds is new_place.calibrate_thresholds


def test_the_old_command_runs_and_says_where_it_went():
    run = subprocess.run(
        [sys.executable, "-m", "icpc_hf.calibrate", "--help"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)},
    )
    assert run.returncode == 0, run.stderr
    assert "usage: icpc-calibrate" in run.stdout and "--target-speedup" in run.stdout
    assert "FutureWarning" in run.stderr and "icpc_hf.training.calibrate" in run.stderr


def test_the_old_module_is_not_served(tmp_path):
    model = patch_model(tiny_vit(), ICPCConfig(levels=[0.5, 1.0]))
    save_for_hub(model, tiny_image_processor(), tmp_path)
    assert "image.py" in os.listdir(tmp_path) and "calibrate.py" not in os.listdir(tmp_path)
    assert os.path.getsize(os.path.join(os.path.dirname(icpc_hf.__file__), "calibrate.py")) < 2_000


@pytest.mark.parametrize("old, new", sorted(icpc_hf.RENAMED.items()))
def test_renamed_public_names_warn_with_the_new_name_and_give_the_same_object(old, new):
    with pytest.warns(FutureWarning, match=rf"icpc_hf\.{old} is now icpc_hf\.{new}\b"):
        value = getattr(icpc_hf, old)
    assert value is getattr(icpc_hf, new) and old not in icpc_hf.__all__
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        icpc_hf.no_such_name  # noqa: B018 - the lookup itself is the test
