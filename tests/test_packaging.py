"""The package says what it is: license file, supported Pythons (as CI tests them),
version, and the classifiers an integrator filters on."""

from __future__ import annotations

import re
from pathlib import Path

import aiodimse
from aiodimse.compat import tomllib

ROOT = Path(__file__).resolve().parent.parent


def _project() -> dict[str, object]:
    with (ROOT / "pyproject.toml").open("rb") as f:
        project: dict[str, object] = tomllib.load(f)["project"]
    return project


def test_license_file_is_shipped_and_matches_the_declared_license() -> None:
    project = _project()
    assert project["license"] == "MIT"
    assert project["license-files"] == ["LICENSE"]
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")


def test_the_supported_pythons_are_the_ones_ci_tests() -> None:
    classifiers = list(_project()["classifiers"])  # type: ignore[call-overload]
    declared = sorted(c.rsplit(" :: ", 1)[1] for c in classifiers
                      if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c))
    run_sh = (ROOT / "tests" / "run.sh").read_text()
    tested = re.search(r'^SUPPORTED="([^"]+)"', run_sh, re.M)
    assert tested is not None
    assert declared == tested.group(1).split() == ["3.10", "3.11", "3.12", "3.13"]
    assert _project()["requires-python"] == ">=3.10"


def test_version_and_classifiers() -> None:
    project = _project()
    assert project["version"] == aiodimse.__version__
    classifiers = set(project["classifiers"])  # type: ignore[call-overload]
    assert {"Intended Audience :: Healthcare Industry", "Topic :: System :: Networking",
            "Operating System :: POSIX :: Linux"} <= classifiers
    assert any(c.startswith("Development Status :: ") for c in classifiers)
    assert (ROOT / "CHANGELOG.md").read_text().startswith("# Changelog")
