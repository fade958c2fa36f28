"""tb-cnnviz: see what a CNN learns while it trains, in a TensorBoard tab."""

import re

from setuptools import setup

# One version, written in tb_cnnviz/__init__.py (read here without importing the package).
VERSION = re.search(
    r'^__version__ = "([^"]+)"', open("tb_cnnviz/__init__.py", encoding="utf-8").read(), re.M
).group(1)

setup(
    name="tb-cnnviz",
    version=VERSION,
    description="TensorBoard plugin and PyTorch training callbacks for visualising convolutional networks",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.9",
    packages=[
        "tb_cnnviz",
        "tb_cnnviz.analysis",
        "tb_cnnviz.cli",
        "tb_cnnviz.datasets",
        "tb_cnnviz.plugin",
        "tb_cnnviz.plugin.routes",
        "tb_cnnviz.callbacks",
        "tb_cnnviz.frontend",
    ],
    # The callbacks and the UI live at the top of the repository but install inside
    # the package, so nothing named plain ``callbacks`` or ``frontend`` lands in site-packages.
    package_dir={"tb_cnnviz.callbacks": "callbacks", "tb_cnnviz.frontend": "frontend"},
    package_data={"tb_cnnviz.frontend": ["*.js", "*.css", "*.html", "views/**/*.js", "vendor/*.js"]},
    install_requires=[
        "torch>=2.1,<3",
        "torchvision>=0.16,<1",
        "tensorboard>=2.16,<3",
        "numpy>=1.24,<3",
        "pillow>=9.0,<14",
        "werkzeug>=2.2,<4",
        "matplotlib>=3.6,<4",
        "captum>=0.7,<1",
        "openTSNE>=1.0,<2",
        "tqdm>=4.60,<5",
    ],
    extras_require={
        "dev": [
            "pytest>=7,<10",
            "ruff>=0.6,<1",
            "pytest-timeout>=2,<3",
            "playwright>=1.40,<2",
            "scikit-learn>=1.2,<2",
            "lightning>=2.1,<3",
            "timm>=1.0,<2",  # the zoo tests: timm's CNN families with random weights
        ],
        "lightning": ["lightning>=2.1,<3"],
        "umap": ["umap-learn>=0.5,<1"],
    },
    entry_points={
        "tensorboard_plugins": ["cnnviz = tb_cnnviz.plugin:CNNVizLoader"],
        "console_scripts": ["tb-cnnviz = tb_cnnviz.cli:main"],
    },
    classifiers=[
        "Framework :: TensorBoard",
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
