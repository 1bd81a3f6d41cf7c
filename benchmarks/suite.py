"""The task suites the defaults are chosen on, as data: one `Round` per question the selection rule answers.

Fixed before the runs (docs/reference/selection-rule.md): a default is chosen on the "choose" half of a round's suite
and confirmed on its "confirm" half, which no choice looked at. Tasks in no round are reported beside them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Round:
    """One question for the rule: the tasks (name -> (half, regime)), the arms that are candidates, the arm that stays
    the default when none is eligible, and how a candidate's best accuracy is summarised over seeds."""

    title: str
    suite: dict[str, tuple[str, str]]
    """task -> (half, regime); the half is "choose", "confirm", or "reported" (shown beside, deciding nothing)."""
    candidates: tuple[str, ...]
    incumbent: str
    over_seeds: str = "mean"
    """"mean" or "median" of the per-seed best accuracy as served, as the round's rule was written."""
    fallback_margin: float | None = None
    """Round 4: with no eligible candidate, the most accurate one is chosen if it is more than this above the
    incumbent, and it holds on a confirm task where it is above the incumbent (None: rounds 1 to 3, no fallback)."""
    speed: str = "time_to_accuracy_speedup"
    """The figure candidates are ranked by: the speedup to the baseline's exact best, or, from the second text round
    on, to within one standard error of it ("speedup_within_one_error", the issue's own measure), or, in round 6,
    counted in epochs ("speedup_in_epochs": its candidates share every batch until the last stage, so seconds
    would only rank the machine's noise)."""
    confirm_decides: bool = False
    """Second text round: its choose half had been seen when it was written, so what it picks replaces the incumbent
    only if, on every confirm task, it is within a point of the baseline and at least as fast as the incumbent there
    (less the tie margin); otherwise the incumbent stays."""


IMAGE = Round(
    title="image schedules and positions",
    suite={
        "image": ("choose", "data-limited"),
        "image_plain": ("choose", "data-limited"),
        "image_coarse": ("confirm", "data-limited"),
        "image_fine": ("confirm", "data-limited"),
        "image_finetune": ("confirm", "data-limited"),
        "image_undertrained": ("confirm", "under-trained"),
    },
    candidates=(
        "icpc constant crop",
        "icpc progressive crop",
        "icpc anchored crop",
        # round 2: the same rule, stride positions
        "icpc progressive stride",
        "icpc constant stride",
        # round 3: the same rule, a schedule the evaluations during training move
        "icpc adaptive crop",
    ),
    incumbent="icpc progressive crop",
)
"""Rounds 1 to 3: `ICPCConfig()` with each candidate schedule and position strategy (default levels)."""

TEXT = Round(
    title="the text scorer",
    suite={
        "text": ("choose", "data-limited"),
        "text_long": ("choose", "data-limited"),
        "text_packages": ("confirm", "data-limited"),  # held out, added before its runs
    },
    candidates=("icpc progressive", "icpc importance", "icpc importance constant"),
    incumbent="icpc progressive",
    over_seeds="median",
)
"""The text round (issue 23): the stop-word scorer against the importance scorer; one held-out confirm task."""

TEXT_PACE = Round(
    title="the text schedule, to within one standard error",
    suite={**TEXT.suite, "text_tools": ("confirm", "data-limited")},  # held out, added before its runs
    candidates=("icpc importance", "icpc importance constant"),
    incumbent="icpc importance",
    over_seeds="median",
    speed="speedup_within_one_error",
    confirm_decides=True,
)
"""The second text round (issue 23): the importance scorer's schedule, ranked by the issue's own speed measure."""

FINETUNE = Round(
    title="positions for a pretrained checkpoint",
    suite={"image_finetune": ("choose", "data-limited"), "image_finetune_lowres": ("confirm", "data-limited")},
    candidates=("icpc progressive crop", "icpc progressive stride", "icpc progressive interpolate"),
    incumbent="icpc progressive crop",
    over_seeds="median",
    fallback_margin=0.02,
)
"""Round 4: which positions `ICPCConfig()` gives a model whose position table is pretrained."""

BOOKENDS = Round(
    title="a schedule that serves its smallest level to the end",
    # rounds 1 to 3's suite; the two tasks where no schedule holds are reported, deciding nothing
    suite={
        **IMAGE.suite,
        "image_finetune": ("reported", "data-limited"),
        "image_undertrained": ("reported", "under-trained"),
    },
    candidates=("icpc progressive crop", "icpc bookends"),
    incumbent="icpc progressive crop",
    confirm_decides=True,
)
"""Round 5 (issue 25): the smallest level and full size, alike, to the end; its choose half had been seen."""

ENDS = Round(
    title="progressive, ending on both ends",
    suite=BOOKENDS.suite,
    candidates=("icpc progressive crop", "icpc progressive bookends"),
    incumbent="icpc progressive crop",
    speed="speedup_in_epochs",
    confirm_decides=True,
)
"""Round 6 (issue 25): progressive batch for batch, but its last stage trains the smallest level beside full size."""

DISTILLED = Round(
    title="the smallest level distilled in every step",
    suite=BOOKENDS.suite,
    candidates=("icpc progressive crop", "icpc progressive distilled"),
    incumbent="icpc progressive crop",
    confirm_decides=True,
)
"""Round 7 (issue 25): progressive batch for batch, each step adding the smallest level trained on its prediction."""

PRETRAINED_TASKS = frozenset(FINETUNE.suite)
"""The tasks whose model starts from a pretrained position table, where `ICPCConfig()` resolves to interpolate."""

ROUNDS = (IMAGE, FINETUNE, BOOKENDS, ENDS, DISTILLED, TEXT, TEXT_PACE)

TOLERANCE = 0.01
"""A candidate may be at most this far (1 point) below the baseline's best accuracy on a data-limited task."""

TIE = 0.05
"""Time-to-accuracy speedups closer than this tie; the served cascade's speedup breaks the tie."""
