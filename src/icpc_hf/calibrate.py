"""Moved to `icpc_hf.training.calibrate`; this old name keeps working, with a FutureWarning, until the next release.

Tiny and lazy on purpose: it lives among the served modules only because the old name did, no served module imports
it (so no Hub folder holds it), and it reaches `icpc_hf.training` only when a name is asked of it.
"""

import warnings

NEW_PLACE = "icpc_hf.training.calibrate"

warnings.warn(
    f"icpc_hf.calibrate has moved to {NEW_PLACE}: import it from there, or run `python -m {NEW_PLACE}` "
    "(or `icpc-calibrate`). The old name goes in the next release.",
    FutureWarning,
    stacklevel=2,
)


def __getattr__(name: str):
    from .training import calibrate

    return getattr(calibrate, name)


if __name__ == "__main__":
    from icpc_hf.training.calibrate import main

    main()
