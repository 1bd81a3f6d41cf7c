"""The selection rule of docs/reference/selection-rule.md as benchmarks/convergence_report.py applies it, on made-up
summaries: eligibility within a point of the baseline, the fastest eligible candidate, ties, and no-one eligible."""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))
from convergence_report import apply_rule  # noqa: E402
from suite import ROUNDS, Round  # noqa: E402

RULE = Round(
    title="test",
    suite={"a": ("choose", "data-limited"), "b": ("choose", "data-limited"), "c": ("confirm", "data-limited")},
    candidates=("fast", "slow"),
    incumbent="slow",
    over_seeds="median",
)


def summary(arm, speedup=1.0, best=0.80, mean=None, served=1.0, near=None):
    return {
        "arm": arm,
        "seeds": 3,
        "time_to_accuracy_speedup": speedup,
        "speedup_within_one_error": speedup if near is None else near,
        "best_served_median": best,
        "best_served": best if mean is None else mean,
        "best_within_baseline_time": best,
        "cascade_speedup": served,
        "token_ratio": 0.5,
    }


def sections(fast_best=0.80, fast_speed=2.0, slow_speed=1.5, fast_served=1.0, slow_served=1.0, confirm_best=0.80):
    rows = {
        task: [
            summary("baseline"),
            summary("fast", fast_speed, fast_best, served=fast_served),
            summary("slow", slow_speed, 0.80, served=slow_served),
        ]
        for task in ("a", "b")
    }
    rows["c"] = [summary("baseline"), summary("fast", 2.0, confirm_best), summary("slow", 1.5, 0.80)]
    return rows


def test_the_fastest_eligible_candidate_is_chosen_and_the_confirm_half_reported():
    chosen, lines = apply_rule(sections(), RULE)
    assert chosen == "fast"
    assert "it holds on every confirm-half task that ran" in "\n".join(lines)
    chosen, lines = apply_rule(sections(confirm_best=0.75), RULE)
    assert chosen == "fast" and "it does not hold on c" in "\n".join(lines)


def test_more_than_a_point_below_the_baseline_is_not_eligible_however_fast():
    chosen, lines = apply_rule(sections(fast_best=0.789, fast_speed=5.0), RULE)
    assert chosen == "slow"
    assert "- fast: not eligible (more than 1 point below)." in lines
    assert apply_rule(sections(fast_best=0.791, fast_speed=5.0), RULE)[0] == "fast"


def test_no_eligible_candidate_keeps_the_incumbent():
    rows = sections(fast_best=0.70)
    rows["a"][2] = summary("slow", 1.5, 0.70)
    chosen, lines = apply_rule(rows, RULE)
    assert chosen is None and "No candidate is eligible: the default stays slow." in "\n".join(lines)


@pytest.mark.parametrize("over_seeds, expected", [("median", "fast"), ("mean", "slow")])
def test_the_best_accuracy_is_summarised_over_seeds_as_the_round_says(over_seeds, expected):
    rows = sections()
    rows["a"][1] = summary("fast", 2.0, best=0.80, mean=0.70)
    rule = Round(RULE.title, RULE.suite, RULE.candidates, RULE.incumbent, over_seeds)
    assert apply_rule(rows, rule)[0] == expected


def test_a_tie_in_speed_goes_to_the_faster_served_cascade():
    assert apply_rule(sections(fast_speed=1.52, slow_speed=1.5, slow_served=2.0), RULE)[0] == "slow"
    assert apply_rule(sections(fast_speed=1.60, slow_speed=1.5, slow_served=2.0), RULE)[0] == "fast"


def test_a_candidate_not_run_everywhere_is_not_eligible():
    rows = sections()
    rows["b"] = [r for r in rows["b"] if r["arm"] != "fast"]
    chosen, lines = apply_rule(rows, RULE)
    assert chosen == "slow" and "- fast: not eligible (not run on every choose-half task)." in lines


def test_every_round_names_candidates_and_an_incumbent_among_them_or_its_tasks():
    for rule in ROUNDS:
        assert rule.incumbent in rule.candidates and rule.over_seeds in ("mean", "median")
        assert {half for half, _ in rule.suite.values()} <= {"choose", "confirm", "reported"}
        assert "choose" in {half for half, _ in rule.suite.values()}


def test_a_reported_task_is_shown_but_decides_nothing():
    import dataclasses

    rule = dataclasses.replace(RULE, suite={**RULE.suite, "d": ("reported", "data-limited")}, confirm_decides=True)
    rows = sections()
    rows["d"] = [summary("baseline", 1.0, 0.90), summary("fast", 0.0, 0.70), summary("slow", 0.0, 0.70)]
    chosen, lines = apply_rule(rows, rule)
    assert chosen == "fast" and "it holds on every confirm-half task that ran" in "\n".join(lines)
    assert any(
        line.startswith("| reported | d | 3 | 0.9000 |") and "0.7000 **(> 1 pt below)**" in line for line in lines
    )
    assert "reported beside: `d`." in "\n".join(lines)


def test_round_4_falls_back_to_the_most_accurate_when_clearly_above_the_incumbent():
    import dataclasses

    rule = dataclasses.replace(RULE, fallback_margin=0.02)
    rows = sections(fast_best=0.75)  # fast: 5 points below the baseline, not eligible
    for task in ("a", "b"):
        rows[task][2] = summary("slow", 1.5, 0.72)  # the incumbent: 8 points below
    rows["c"] = [summary("baseline"), summary("fast", 0.0, 0.78), summary("slow", 0.0, 0.76)]
    chosen, lines = apply_rule(rows, rule)
    assert chosen == "fast" and "3.0 points above slow" in "\n".join(lines)
    assert "it holds on every confirm-half task that ran (to hold: above slow's" in "\n".join(lines)
    rows["c"][2] = summary("slow", 0.0, 0.79)  # held out, the incumbent is the more accurate
    assert "it does not hold on c" in "\n".join(apply_rule(rows, rule)[1])
    for task in ("a", "b"):
        rows[task][2] = summary("slow", 1.5, 0.74)  # 1 point below fast: not more than the margin
    chosen, lines = apply_rule(rows, rule)
    assert chosen is None and "the default stays" in "\n".join(lines)
    chosen, lines = apply_rule({}, rule)  # a round none of whose tasks ran (the quick benchmark in CI)
    assert chosen is None and "Not run on every choose-half task yet" in "\n".join(lines)


def test_the_second_text_round_ranks_within_one_error_and_switches_only_when_confirmed():
    import dataclasses

    rule = dataclasses.replace(RULE, speed="speedup_within_one_error", confirm_decides=True)
    rows = sections(fast_speed=0.5, slow_speed=1.0)  # exact best: slow ahead
    for task in ("a", "b"):
        rows[task][1] = summary("fast", 0.5, 0.80, near=2.0)  # within one error: fast ahead
        rows[task][2] = summary("slow", 1.0, 0.80, near=1.2)
    rows["c"] = [summary("baseline"), summary("fast", 0.0, 0.80, near=1.5), summary("slow", 0.0, 0.80, near=1.5)]
    assert apply_rule(rows, RULE)[0] == "slow"  # the first rounds' measure
    chosen, lines = apply_rule(rows, rule)
    assert chosen == "fast" and "**Chosen: fast.**" in "\n".join(lines)
    rows["c"][1] = summary("fast", 0.0, 0.80, near=1.3)  # held out, slower than the incumbent
    chosen, lines = apply_rule(rows, rule)
    assert chosen == "slow" and "the default stays slow" in "\n".join(lines)
    rows["c"][1] = summary("fast", 0.0, 0.78, near=3.0)  # held out, faster but 2 points below the baseline
    assert apply_rule(rows, rule)[0] == "slow"
    rows["c"] = [summary("baseline"), summary("slow", 0.0, 0.80)]  # not run held out yet
    chosen, lines = apply_rule(rows, rule)
    assert chosen == "slow" and "not run yet: c" in "\n".join(lines)


def test_arms_are_picked_by_prefix_or_by_exact_name_ending_in_a_dollar():
    from convergence import picks

    assert picks("icpc importance constant", "icpc importance")
    assert not picks("icpc importance constant", "icpc importance$")
    assert picks("icpc importance", "icpc importance$") and not picks("baseline", "icpc")


def test_the_speedup_in_epochs_counts_evaluated_epochs_not_seconds():
    from convergence_report import arm_rows

    def run(arm, seed, accuracies, seconds_per_epoch):
        curve = [
            {
                "epoch": e,
                "train_seconds": e * seconds_per_epoch,
                "served_accuracy": a,
                "test": {"1": a},
                "served_level": "1",
            }
            for e, a in enumerate(accuracies, start=1)
        ]
        return {
            "arm": arm,
            "seed": seed,
            "curve": curve,
            "train_seconds": curve[-1]["train_seconds"],
            "token_ratio": 1.0,
            "serving": {},
            "test_size": 1000,
        }

    arms = {
        "baseline": [run("baseline", 0, [0.5, 0.6, 0.7, 0.7], 10.0), run("baseline", 1, [0.5, 0.6, 0.6, 0.8], 10.0)],
        # the same epochs on a slower machine: the speedup in seconds halves, the one in epochs does not move
        "slow twin": [run("slow twin", 0, [0.5, 0.6, 0.7, 0.7], 20.0), run("slow twin", 1, [0.5, 0.6, 0.6, 0.8], 20.0)],
        "later": [run("later", 0, [0.5, 0.6, 0.6, 0.7], 10.0), run("later", 1, [0.5, 0.6, 0.6, 0.7], 10.0)],
    }
    rows = {row["arm"]: row for row in arm_rows(arms)}
    assert rows["slow twin"]["time_to_accuracy_speedup"] == pytest.approx(0.5)
    assert rows["slow twin"]["speedup_in_epochs"] == pytest.approx(1.0)
    assert rows["later"]["speedup_in_epochs"] == pytest.approx((3 / 4 + 0.0) / 2)  # seed 1 never reaches 0.8
