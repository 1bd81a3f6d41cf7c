"""A model's input sizes: the base of the dataclass each modality defines in its own module.

`patch_model` reads them from the model's config (the modality's `geometry`, plus the facts its patch knows, such
as special tokens) and keeps them in the ICPC settings as a plain dict, so they save with `config.json`; the
modality reads them back typed (`Modality.geo`). Settings saved by an older version may lack a field added
since: the defaults below are what those versions assumed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


def pair(value: Any) -> tuple[int, int]:
    """A (height, width) size from a config value that is one int or a pair."""
    if isinstance(value, (list, tuple)):
        return int(value[0]), int(value[1])
    return int(value), int(value)


@dataclass(frozen=True, kw_only=True)
class Geometry:
    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Geometry:
        names = {field.name for field in dataclasses.fields(cls)}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if k in names})

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}
