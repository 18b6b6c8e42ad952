"""Packaging: the top-level data folders ship inside the package.

``topologies/``, ``schedules/`` and ``studies/`` stay at the top of the
repository (their layout is the one a user folder copies) and are installed as
the data packages ``ocsnet.topologies``, ``ocsnet.schedules`` and
``ocsnet.studies``; the code finds them with :mod:`importlib.resources` only.
Everything else about the package is in ``pyproject.toml``.
"""

from setuptools import find_packages, setup

DATA_FOLDERS = ("topologies", "schedules", "studies")

setup(
    packages=find_packages(include=["ocsnet", "ocsnet.*"]) + [f"ocsnet.{d}" for d in DATA_FOLDERS],
    package_dir={f"ocsnet.{d}": d for d in DATA_FOLDERS},
    package_data={"ocsnet.catalog": ["*.toml"], **{f"ocsnet.{d}": ["*.toml", "*.yaml"] for d in DATA_FOLDERS}},
)
