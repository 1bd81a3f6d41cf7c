"""The previous release's names, answered for one more with a FutureWarning that names the new place.

Kept out of the served modules (nothing served imports this one): `import icpc_hf` puts the old names of the served
modules back on them, listed at the end; training code declares its own with `old_attribute`. The next release
deletes this module and its uses.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any


def warn_renamed(old: str, new: str) -> None:
    warnings.warn(f"{old} is now {new}; the old name goes in the next release.", FutureWarning, stacklevel=3)


def old_module_names(module: str, names: dict[str, str], namespace: dict[str, Any]) -> Callable[[str], Any]:
    """A module's `__getattr__` answering each old name of `names` with the value of its new one."""

    def __getattr__(name: str) -> Any:
        if name not in names:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        warn_renamed(f"{module}.{name}", f"{module}.{names[name]}")
        return namespace[names[name]]

    return __getattr__


def old_attribute(owner: str, old: str, new: str, warn_on_set: bool = True) -> property:
    """A property answering `owner.old` with `owner.new`. `warn_on_set=False` for an attribute the previous release
    saved, which a library sets when it restores that save (the Trainer, a callback's checkpoint state)."""

    def get(self: Any) -> Any:
        warn_renamed(f"{owner}.{old}", f"{owner}.{new}")
        return getattr(self, new)

    def put(self: Any, value: Any) -> None:
        if warn_on_set:
            warn_renamed(f"{owner}.{old}", f"{owner}.{new}")
        setattr(self, new, value)

    return property(get, put, doc=f"The previous release's name of `{new}`.")


def _take_old_keyword(init: Callable[..., None]) -> Callable[..., None]:
    """`Registration(patches=...)`, the previous release's keyword of `architectures`."""

    def __init__(self: Any, *args: Any, patches: Any = None, **kwargs: Any) -> None:
        if patches is not None:
            warn_renamed("Registration(patches=...)", "Registration(architectures=...)")
            kwargs["architectures"] = patches
        init(self, *args, **kwargs)

    return __init__


def _put_back() -> None:
    from . import embeddings, embeddings_bert, registry

    for module, names in (
        (registry, {"Patch": "Architecture"}),
        (embeddings, {"SwapPatch": "SwappedEmbeddings"}),
        (embeddings_bert, {"TextPositionsPatch": "TextPositions"}),
    ):
        module.__getattr__ = old_module_names(module.__name__, names, vars(module))
    registry.Registration.patches = old_attribute("Registration", "patches", "architectures")
    registry.Registration.__init__ = _take_old_keyword(registry.Registration.__init__)
    registry.Entry.patch = old_attribute("Entry", "patch", "architecture")


_put_back()
