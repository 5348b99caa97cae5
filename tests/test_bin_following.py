"""`bin/following` works from a checkout as the README says: from any directory, with no virtual environment
activated, using the checkout's .venv by itself; without one it says what to install (no traceback)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYPROJECT_VERSION = next(line.split('"')[1] for line in (REPO / "pyproject.toml").read_text().splitlines()
                         if line.startswith("version"))


def _clean_env() -> dict[str, str]:
    """No venv activated, no PYTHONPATH: what a new shell has."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "FOLLOWING_BIN_REEXEC")}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if ".venv" not in p)
    return env


def _fake_checkout(tmp_path: Path, *, venv: bool) -> Path:
    """A checkout whose code is this one's; its .venv (if any) runs the Python that has the dependencies."""
    checkout = tmp_path / "checkout"
    (checkout / "bin").mkdir(parents=True)
    (checkout / "bin" / "following").write_bytes((REPO / "bin" / "following").read_bytes())
    for name in ("actors", "cli", "exchange", "ops", "parsing", "runtime", "trading", "conf", "pyproject.toml"):
        (checkout / name).symlink_to(REPO / name)
    if venv:
        python = checkout / ".venv" / "bin" / "python"
        python.parent.mkdir(parents=True)
        python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n', encoding="utf-8")
        python.chmod(0o755)
    return checkout


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=_clean_env(), capture_output=True, text=True, timeout=60)


def test_runs_from_another_directory_with_the_checkouts_code(tmp_path: Path) -> None:
    result = _run([sys.executable, str(REPO / "bin" / "following"), "check-config", "--conf",
                   str(REPO / "conf" / "demo.yaml")], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("# account: PAPER trading")


def test_a_python_without_the_dependencies_uses_the_checkouts_venv(tmp_path: Path) -> None:
    checkout = _fake_checkout(tmp_path, venv=True)
    # -S: no site-packages, i.e. a plain python3 that has none of the dependencies
    result = _run([sys.executable, "-S", str(checkout / "bin" / "following"), "--version"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"following {PYPROJECT_VERSION}"


def test_without_a_venv_it_says_what_to_install(tmp_path: Path) -> None:
    checkout = _fake_checkout(tmp_path, venv=False)
    result = _run([sys.executable, "-S", str(checkout / "bin" / "following"), "--conf", "conf/demo.yaml"],
                  cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "lacks pykka" in result.stderr and "python3 -m venv .venv && .venv/bin/pip install -e ." in result.stderr
    assert str(checkout) in result.stderr


def test_the_script_is_executable_by_its_shebang() -> None:
    script = REPO / "bin" / "following"
    assert os.access(script, os.X_OK)
    assert script.read_text(encoding="utf-8").startswith("#!/usr/bin/env python3\n")
