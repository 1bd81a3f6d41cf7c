"""Replaying cascades on stored level passes (`LevelPasses`), and the calibration rules compared on them offline."""

import json
import os
import sys

import torch

from icpc_hf.training.calibrate import LevelPasses, choose_point

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))
import cascade_rules  # noqa: E402
from convergence import passes_record  # noqa: E402


def split_passes() -> LevelPasses:
    """8 samples, levels 0.5 and 1.0, each right on 6: level 0.5 confident on the even samples and unsure (0.6) on
    the odd ones, wrong on samples 1 and 3; full size wrong on samples 0 and 2. Level 0.5 alone ties the best level on
    the whole set and fails the odd half; a cascade that sends its unsure samples to full size is right everywhere."""
    labels = torch.zeros(8, dtype=torch.long)
    small = torch.tensor([[0.9, 0.1] if i % 2 == 0 else [0.4, 0.6] if i in (1, 3) else [0.6, 0.4] for i in range(8)])
    large = torch.tensor([[0.2, 0.8] if i in (0, 2) else [0.8, 0.2] for i in range(8)])
    costs = [torch.full((8,), 0.5, dtype=torch.float64), torch.ones(8, dtype=torch.float64)]
    return LevelPasses([0.5, 1.0], [small, large], costs, labels)


def test_replay_scores_a_cascade_from_its_level_passes():
    passes = split_passes()
    assert passes.level_accuracies == [0.75, 0.75]
    assert passes.replay([0.5, 1.0], [0.0]) == (0.75, 0.5)  # level 0.5 answers everything
    assert passes.replay([1.0], []) == (0.75, 1.0)
    accuracy, cost = passes.replay([0.5, 1.0], [0.9])  # odd samples (confidence 0.6) go on to full size
    assert accuracy == 1.0 and cost == 0.5 + 0.5 * 1.0


def test_search_covers_every_cascade_ending_on_the_largest_level():
    points = split_passes().search(candidates=(0.0, 0.9), max_steps=2)
    assert [(p.levels, p.thresholds) for p in points] == [([1.0], []), ([0.5, 1.0], [0.0]), ([0.5, 1.0], [0.9])]
    chosen, reference = choose_point(points, [0.75, 0.75], max_accuracy_loss=0.0, reference="best_level")
    assert reference == 0.75 and (chosen.levels, chosen.thresholds) == ([0.5, 1.0], [0.0])  # cheapest that ties


def test_halves_refuses_a_point_that_ties_on_the_whole_set_by_failing_one_half():
    passes = split_passes()
    points = passes.search(cascade_rules.CANDIDATES, cascade_rules.MAX_STEPS)
    lucky = cascade_rules.best_level(passes, points)
    assert lucky.thresholds == [0.0] and lucky.accuracy == 0.75
    held = cascade_rules.halves(passes, points)
    assert held.levels == [0.5, 1.0] and 0.6 < held.thresholds[0] <= 0.9 and held.accuracy == 1.0


def test_two_levels_searches_cascades_of_at_most_two_levels():
    passes = LevelPasses(
        [0.3, 0.5, 1.0],
        [torch.tensor([[0.7, 0.3]] * 4)] * 3,
        [torch.ones(4, dtype=torch.float64)] * 3,
        torch.zeros(4, dtype=torch.long),
    )
    points = passes.search(cascade_rules.CANDIDATES, 3)
    assert any(len(p.levels) == 3 for p in points)
    assert len(cascade_rules.two_levels(passes, points).levels) <= 2


def test_the_report_replays_every_rule_on_a_stored_run(tmp_path):
    passes = split_passes()
    folder = tmp_path / "text_tools"
    folder.mkdir()
    record = {"validation": passes_record(passes), "test": passes_record(passes)}
    (folder / "arm-s0.passes.json").write_text(json.dumps(record))
    serving = {"levels": [0.5, 1.0], "thresholds": [0.0], "cascade_accuracy": 0.75, "speedup": 1.9}
    run = {"task": "text_tools", "arm": "arm", "seed": 0, "serving": serving}
    (folder / "arm-s0.json").write_text(json.dumps(run))
    rows = cascade_rules.evaluate(str(tmp_path))
    (row,) = rows["text_tools", "arm"]
    assert row["replays_shipped"] is True
    assert row["rules"]["best_level"]["accuracy"] == 0.75 and row["rules"]["halves"]["accuracy"] == 1.0
    assert row["oracle"] == {"accuracy": 0.75, "speed": 2.0}  # the cascade right everywhere costs 1.0: too slow
    text = cascade_rules.report(rows)
    assert "| text_tools | arm | 1 | 0.7500 | +0.00, 2.00x | " in text and "for 1 of 1 models" in text
    assert "calibrated on more held-out texts" not in text  # no reserve passes: no calibration-size tables
    assert "| text_tools | 0 | 0.7500 | 0.7500, 1.90x | 0.7500, 2.00x ([0.5, 1.0] at [0.0]) |" in text


def test_label_balanced_weighs_every_label_the_same():
    passes = split_passes()
    passes.labels[:2] = 1  # labels 1, 1, 0, 0, 0, 0, 0, 0
    balanced = cascade_rules.label_balanced(passes)
    assert torch.bincount(balanced.labels).tolist() == [6, 6]
    assert balanced.labels[:6].tolist() == [0] * 6 and balanced.probabilities[0][6:].tolist() == [
        passes.probabilities[0][i].tolist() for i in (0, 1, 0, 1, 0, 1)
    ]


def test_the_report_calibrates_on_the_reserve_when_a_run_kept_it(tmp_path):
    """The validation half holds only the lucky samples (even: level 0.5 right and sure, full size once wrong); with
    the reserve (odd: level 0.5 unsure and twice wrong, full size right) `best_level` must send the unsure samples on
    to full size."""
    passes = split_passes()
    passes.probabilities[1][2] = torch.tensor([0.8, 0.2])  # full size wrong on sample 0 only: 0.875
    passes.costs[0] = torch.full((8,), 0.25, dtype=torch.float64)
    rows = torch.arange(8)
    validation, reserve = (cascade_rules.subset(passes, rows[rows % 2 == side]) for side in (0, 1))
    folder = tmp_path / "text"
    folder.mkdir()
    flops = [[0.4] * 4, [1.0] * 4]
    record = {
        "validation": passes_record(validation),
        "test": passes_record(passes),
        "reserve": passes_record(reserve),
        "validation_flops_costs": flops,
        "reserve_flops_costs": flops,
    }
    (folder / "arm-s0.passes.json").write_text(json.dumps(record))
    serving = {"levels": [0.5, 1.0], "thresholds": [0.0], "cascade_accuracy": 0.75, "speedup": 4.0}
    (folder / "arm-s0.json").write_text(json.dumps({"task": "text", "arm": "arm", "seed": 0, "serving": serving}))
    rows = cascade_rules.evaluate(str(tmp_path))
    (row,) = rows["text", "arm"]
    assert row["full"] == 0.875
    assert row["sets"]["validation"]["accuracy"] == 0.75  # level 0.5 alone: right on every validation sample
    assert row["sets"]["large"]["accuracy"] == 1.0 and row["sets"]["large"]["size"] == 8
    assert row["sets"]["large, FLOPs"]["accuracy"] == 1.0
    text = cascade_rules.report(rows, bests={"text": 0.8})
    # loss is full minus cascade; below the plain Trainer's best (0.8): validation 0.75, large 1.0
    summary = "| text | arm | 1 | 4/8 | +12.50, 4.00x | -12.50, 1.33x | +12.50, 4.00x | -12.50, 1.33x | +5.00, -20.00 |"
    assert summary in text
    assert text.rstrip().splitlines()[-1].startswith("| text | 0 | 0.8750 | 0.7500, 4.00x ([0.5, 1.0] at [0.0]) |")
