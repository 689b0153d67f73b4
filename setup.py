"""hatast: HAT, HAT+AST, look-up-table SR and USRNet as a BasicSR plugin."""

from pathlib import Path

from setuptools import find_packages, setup

here = Path(__file__).parent
version = {}
exec((here / "hatast" / "version.py").read_text(), version)

setup(
    name="hatast",
    version=version["__version__"],
    description="Super-resolution toolkit: HAT, HAT+AST, SR-LUT/IM-LUT and USRNet on BasicSR",
    long_description=(here / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["hatast", "hatast.*"]),
    # the released files small enough for the wheel (hatast.release.WHEEL_SUFFIXES), their manifest and cards
    package_data={"hatast": ["configs/*.yml", "eval/*.yml", "weights/manifest.json", "weights/*/*.npz",
                             "weights/*/*.safetensors", "weights/*/*.md"]},
    install_requires=[
        "basicsr>=1.4.2",
        "torch",
        "torchvision",
        "numpy",
        "scipy",
        "opencv-python",
        "lmdb",
        "pyyaml",
        "tb-nightly",
        "scikit-image",
        "numba",
        "Pillow",
        "safetensors",
        "tqdm",
    ],
    # test peers: spandrel loads released HAT files; onnx, onnxscript (torch's exporter) and onnxruntime check exports
    extras_require={"test": ["pytest", "ruff", "hypothesis", "spandrel", "onnx", "onnxscript", "onnxruntime"]},
    entry_points={
        "console_scripts": [
            "hatast=hatast.cli.main:main",
            "hatast-train=hatast.engine:main_train",
            "hatast-test=hatast.engine:main_test",
        ]
    },
)
