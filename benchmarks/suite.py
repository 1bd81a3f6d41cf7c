"""The task suite the defaults are chosen on, as data: which half of the suite each task belongs to and its regime.

Fixed before the runs (docs/reference/selection-rule.md): a default is chosen on the "choose" half and confirmed on the
"confirm" half, which no choice looked at. Tasks not listed (audio, video, text) are reported beside them.
"""

SUITE = {
    "image": ("choose", "data-limited"),
    "image_plain": ("choose", "data-limited"),
    "image_coarse": ("confirm", "data-limited"),
    "image_fine": ("confirm", "data-limited"),
    "image_finetune": ("confirm", "data-limited"),
    "image_undertrained": ("confirm", "under-trained"),
}

CANDIDATES = (
    "icpc constant crop",
    "icpc progressive crop",
    "icpc anchored crop",
    # round 2 (docs/reference/selection-rule.md): the same rule, stride positions
    "icpc progressive stride",
    "icpc constant stride",
)
"""`ICPCConfig()` with each candidate schedule and position strategy (default levels)."""

TOLERANCE = 0.01
"""A candidate may be at most this far (1 point) below the baseline's best accuracy on a data-limited task."""

TIE = 0.05
"""Time-to-accuracy speedups closer than this tie; the served cascade's speedup breaks the tie."""
