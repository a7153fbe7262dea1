"""dctformer_tf: DCTransformer (Nash et al., ICML 2021) in TensorFlow/Keras.

All dependencies are pinned here and only here; `make test` / `make demo` install from this file.
"""

from setuptools import find_packages, setup

INSTALL_REQUIRES = [
    "tensorflow==2.21.0",
    "keras==3.15.1",
    "tensorflow-datasets==4.9.10",
    "importlib_resources",
    "tensorboard==2.21.0",
    "gin-config==0.5.0",
    "pillow>=10.1",  # ImageFont.load_default(size=...)
    "numpy>=1.26,<3",
]

TEST_REQUIRES = [
    "pytest>=8",
    "pytest-xdist>=3.5",  # `make test` runs two workers: most of a test is single-threaded tracing
    "scipy>=1.11",
    "scikit-image>=0.22",
    "ruff>=0.5",
    "packaging",  # tests/test_dependencies.py reads requirement strings (keras installs it too)
    # The JAX backend tier (tests/backends): the model core on Keras' JAX backend, on the CPU.
    "jax==0.10.2",
    "jaxlib==0.10.2",
]

setup(
    name="dctformer_tf",
    version="0.1.0",
    description="DCTransformer: generating images with sparse DCT representations (TF/Keras)",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["dctformer_tf", "dctformer_tf.*"]),
    # The fused encoder kernel's source, compiled on first use (dctformer_tf/dct/fused_op.py).
    package_data={"dctformer_tf.dct": ["*.cc"]},
    install_requires=INSTALL_REQUIRES,
    extras_require={"test": TEST_REQUIRES},
    entry_points={"console_scripts": ["dctformer=dctformer_tf.cli.main:main"]},
    classifiers=[
        "License :: OSI Approved :: Apache Software License",
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
