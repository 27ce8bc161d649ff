"""The installed package: runtime dependencies only, no test machinery, and it runs the demo.

The venv is built the way the image is (scripts/install.sh: uv.lock's runtime set, no dev group,
non-editable), offline from uv's cache, and every check runs outside the repository so the
source tree's ``processor/`` cannot stand in for the installed one.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SUPPORT = ROOT / "tests" / "support"
DEV_ONLY = ("hypothesis", "pytest", "websockets", "gcp_storage_emulator", "mypy")
"""Import names of dev-group packages the test machinery uses; none may be installed."""


def _uv() -> str:
    uv = os.environ.get("UV") or shutil.which("uv")
    assert uv is not None, "uv must be installed: the install script needs it"
    return uv


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Install prowtrace with scripts/install.sh into a scratch venv, offline."""
    target = tmp_path_factory.mktemp("runtime-install") / "venv"
    env = {key: value for key, value in os.environ.items() if key != "VIRTUAL_ENV"}
    env.update({"UV_OFFLINE": "1", "UV_PYTHON": sys.executable})
    env["PATH"] = f"{Path(_uv()).parent}{os.pathsep}{env.get('PATH', '')}"
    result = subprocess.run(  # noqa: S603 - fixed argument list, no shell
        [str(ROOT / "scripts" / "install.sh"), str(target)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return target


def _python(venv: Path, code: str) -> str:
    result = subprocess.run(  # noqa: S603 - fixed argument list, no shell
        [str(venv / "bin" / "python"), "-c", code],
        cwd=venv,  # not the repository, whose processor/ would shadow the installed one
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def _installed_modules(venv: Path) -> list[str]:
    code = (
        "import json, pkgutil, processor;"
        "walk = pkgutil.walk_packages(processor.__path__, 'processor.');"
        "print(json.dumps([module.name for module in walk]))"
    )
    modules: list[str] = json.loads(_python(venv, code))
    return modules


def test_no_dev_dependency_is_installed(venv: Path) -> None:
    """The runtime install holds none of the packages the test machinery needs."""
    code = (
        "import importlib.util, json;"
        f"print(json.dumps([n for n in {DEV_ONLY!r} if importlib.util.find_spec(n)]))"
    )
    assert json.loads(_python(venv, code)) == []


def test_every_installed_module_imports_with_runtime_dependencies_only(venv: Path) -> None:
    """Each module of the installed package imports: nothing needs a dev dependency."""
    modules = [name for name in _installed_modules(venv) if name != "processor.__main__"]
    code = (
        "import importlib, json, sys;"
        f"failed = {{}}\nfor name in {modules!r}:\n"
        "    try:\n        importlib.import_module(name)\n"
        "    except Exception as error:\n        failed[name] = repr(error)\n"
        "print(json.dumps(failed))"
    )
    assert len(modules) > 40  # the whole package was walked, not an empty or shadowed one
    assert json.loads(_python(venv, code)) == {}


def test_the_installed_package_holds_no_test_machinery(venv: Path) -> None:
    """No module of tests/support (oracle, receivers, fault rig, ...) ships, under any folder."""
    machinery = {path.stem for path in SUPPORT.glob("*.py")} - {"__init__"}
    shipped = {name.rsplit(".", 1)[-1] for name in _installed_modules(venv)}

    assert {"oracle", "otlp_receiver", "fault_rig"} <= machinery
    assert machinery & shipped == set()
    assert not any(".testing" in name for name in _installed_modules(venv))


@pytest.mark.emulator
def test_the_installed_command_runs_the_demo(venv: Path, tmp_path: Path) -> None:
    """``prowtrace demo`` from the runtime install traces its jobs end to end (exit 0)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    env["TMPDIR"] = str(tmp_path)
    output = tmp_path / "traces.jsonl"
    result = subprocess.run(  # noqa: S603 - fixed argument list, no shell
        [str(venv / "bin" / "prowtrace"), "demo", "--jobs", "3", "--output", str(output)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traced 3 jobs" in result.stdout
    assert output.stat().st_size > 0
