"""Calibration of the served cascade, one job per module: `search` replays cascades on stored passes and picks the
point meeting a target, `timing` runs and times one pass per level, `thresholds` is the one call
(`calibrate_thresholds`), `plot` draws the frontier, `command` is `icpc-calibrate`. `icpc_hf.training.calibrate`
gathers their public names."""
