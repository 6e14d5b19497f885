"""Installing Lede adds one import package, `lede`, and the `lede` command (decision 37)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT


@pytest.mark.slow
def test_the_wheel_holds_one_top_level_package_with_its_data(tmp_path: Path) -> None:
    source = tmp_path / "source"  # a copy: setuptools writes build/ beside the sources
    for name in ("pyproject.toml", "README.md"):
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, source / name)
    for part in ("indexer", "service", "eval"):
        shutil.copytree(ROOT / part, source / part, ignore=shutil.ignore_patterns("__pycache__"))
    wheel_command = ["pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w"]
    subprocess.run(
        [sys.executable, "-m", *wheel_command, str(tmp_path), str(source)],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    (wheel,) = tmp_path.glob("lede-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert tops == {"lede"}
    for part in ("indexer", "service", "eval"):
        assert f"lede/{part}/__init__.py" in names
    assert "lede/service/http/static/index.html" in names
    assert "lede/service/answers/weights/weights.safetensors" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "lede = lede.service.cli:main" in text and "eval = lede.eval.cli:register" in text


def test_outside_the_repository_only_lede_imports(tmp_path: Path) -> None:
    probe = (
        "import importlib.util, lede.service.http.app, lede.eval.cli; "
        "print([n for n in ('indexer', 'service', 'eval') if importlib.util.find_spec(n)])"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    completed = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "[]"
