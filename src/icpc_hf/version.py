"""The one place the version is written: setup.py reads it as text, `icpc_hf.__version__` and the model card report it.
A module of its own, so that training code reads it without importing the package that imports training code."""

__version__ = "0.1.0"
