import os
import re

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))


def read(*parts: str) -> str:
    with open(os.path.join(HERE, *parts), encoding="utf-8") as handle:
        return handle.read()


def version() -> str:
    """The one place the version is written is `__version__` in src/icpc_hf/version.py (read as text: importing the
    package would need torch before it is installed)."""
    found = re.search(r'^__version__ = "([^"]+)"', read("src", "icpc_hf", "version.py"), re.M)
    if not found:
        raise RuntimeError('src/icpc_hf/version.py must hold a line `__version__ = "X.Y.Z"`')
    return found.group(1)


setup(
    name="icpc-hf",
    version=version(),
    description="Input Compression with Positional Consistency (ICPC) for Hugging Face Transformers",
    long_description=read("README.md") if os.path.exists(os.path.join(HERE, "README.md")) else "",
    long_description_content_type="text/markdown",
    classifiers=[
        "Programming Language :: Python :: 3",
        "Intended Audience :: Science/Research",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
    keywords="transformers, training, input compression, vision transformer, cascade, hugging face",
    package_dir={"": "src"},
    packages=find_packages("src"),
    python_requires=">=3.10",
    install_requires=[
        "torch>=2.4",
        "transformers>=5.0,<6",
        "accelerate>=1.0",
        "huggingface_hub>=1.0",
        "numpy",
        "scipy",
        "pillow",
        "jinja2",
    ],
    entry_points={"console_scripts": ["icpc-calibrate = icpc_hf.training.calibrate:main"]},
    extras_require={
        "examples": ["datasets", "evaluate", "scikit-learn", "matplotlib"],
        "peft": ["peft"],
        "tests": ["pytest", "hypothesis", "datasets", "evaluate", "scikit-learn", "peft"],
    },
)
