from setuptools import find_packages, setup

setup(
    name="icpc-hf",
    version="0.1.0",
    description="Input Compression with Positional Consistency (ICPC) for Hugging Face Transformers",
    long_description=open("README.md", encoding="utf-8").read() if __import__("os").path.exists("README.md") else "",
    long_description_content_type="text/markdown",
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
