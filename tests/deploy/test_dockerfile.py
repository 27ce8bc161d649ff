"""The container image, checked without a Docker engine.

The Dockerfile is linted with checkov's Dockerfile policies and read for the properties the
deployment relies on (distroless non-root runtime, exec-form entrypoint, no baked-in secrets, a
build context that holds only what is copied). Its install step is scripts/install.sh, and the last
tests run that very script into a scratch venv and check it installs exactly the locked runtime
dependencies, so CI exercises the image's install path.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from checkov_scan import ROOT, failed_checks, run_checkov
from packaging.markers import Marker
from packaging.utils import canonicalize_name

DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
INSTALL_SCRIPT = ROOT / "scripts" / "install.sh"
VENV_PATH = "/opt/prowtrace/venv"


# --- reading the Dockerfile -------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction, continuation lines joined."""

    keyword: str
    arguments: str


def parse_dockerfile(text: str) -> list[list[Instruction]]:
    """Split a Dockerfile into stages (each starting at its FROM) of instructions."""
    logical_lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):  # a comment inside a continued instruction
            continue
        if line.endswith("\\"):
            pending += line[:-1].rstrip() + " "
            continue
        logical_lines.append(pending + line)
        pending = ""
    stages: list[list[Instruction]] = []
    for line in logical_lines:
        keyword, _, arguments = line.partition(" ")
        instruction = Instruction(keyword.upper(), arguments.strip())
        if instruction.keyword == "FROM":
            stages.append([])
        assert stages, f"instruction before the first FROM: {line}"
        stages[-1].append(instruction)
    return stages


def _stages() -> list[list[Instruction]]:
    return parse_dockerfile(DOCKERFILE.read_text())


def _all(stage: list[Instruction], keyword: str) -> list[str]:
    return [instruction.arguments for instruction in stage if instruction.keyword == keyword]


def _last(stage: list[Instruction], keyword: str) -> str:
    found = _all(stage, keyword)
    assert found, f"the stage has no {keyword}"
    return found[-1]


def _env_names(stage: list[Instruction]) -> set[str]:
    names: set[str] = set()
    for arguments in _all(stage, "ENV") + _all(stage, "ARG"):
        names.update(re.findall(r"(?:^|\s)([A-Za-z_][A-Za-z0-9_]*)(?==|\s|$)", arguments))
    return names


def test_parser_joins_continuations_and_splits_stages() -> None:
    """The test's own Dockerfile reader handles continuations, comments and stages."""
    stages = parse_dockerfile("# c\nFROM a AS b\nRUN x \\\n  # inner\n  && y\n\nFROM c\nUSER 1\n")
    assert stages == [
        [Instruction("FROM", "a AS b"), Instruction("RUN", "x && y")],
        [Instruction("FROM", "c"), Instruction("USER", "1")],
    ]


# --- checkov ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def checkov_report() -> dict[str, Any]:
    """Checkov's Dockerfile report."""
    return run_checkov("dockerfile", "--file", "Dockerfile")


def test_checkov_reports_no_failed_check(checkov_report: dict[str, Any]) -> None:
    """Every checkov Dockerfile policy passes (or is skipped inline with a reason)."""
    assert checkov_report["summary"]["failed"] == 0, "\n".join(failed_checks(checkov_report))


def test_checkov_parsed_and_scanned_the_dockerfile(checkov_report: dict[str, Any]) -> None:
    """Checkov read the Dockerfile and ran its policies over it."""
    summary = checkov_report["summary"]
    assert summary["parsing_errors"] == 0
    assert summary["resource_count"] == 1
    assert summary["passed"] >= 20


def test_checkov_skips_carry_a_reason() -> None:
    """Every inline ``checkov:skip`` names a check and says why it does not apply."""
    for line in DOCKERFILE.read_text().splitlines():
        if "checkov:skip" in line:
            assert re.search(r"checkov:skip=CKV2?_[A-Z]+_\d+:\S.{20,}", line), line


# --- what the image is ------------------------------------------------------------------------


def test_image_is_built_in_two_stages() -> None:
    """A build stage installs; a separate runtime stage ships the result."""
    stages = _stages()
    assert len(stages) == 2
    assert _last(stages[0], "FROM").endswith(" AS build")


def test_build_stage_installs_with_the_ci_install_script() -> None:
    """The image installs by running scripts/install.sh, the script CI runs below."""
    build = _stages()[0]
    assert f"scripts/install.sh {VENV_PATH}" in _all(build, "RUN")
    assert "scripts/install.sh scripts/install.sh" in _all(build, "COPY")


DIGEST = r"(?:@sha256:[a-f0-9]{64})?"
"""A FROM line may pin its tag by digest (the Dockerfile's header says how to read one)."""
BUILD_BASE = re.compile(rf"debian:(\d+)-slim{DIGEST} AS build")
RUNTIME_BASE = re.compile(rf"gcr\.io/distroless/python3-debian(\d+):nonroot{DIGEST}")
DEBIAN_PYTHON = {"12": "3.11", "13": "3.13"}
"""The python3 each Debian release ships (packages.debian.org: bookworm 3.11, trixie 3.13)."""
IMAGE_PLATFORM = "manylinux.*x86_64"
"""Cloud Run runs linux/amd64 (docs/DEPLOY.md builds with --platform linux/amd64)."""


def _debian_releases() -> tuple[str, str]:
    build, runtime = _stages()
    build_base = BUILD_BASE.fullmatch(_last(build, "FROM"))
    runtime_base = RUNTIME_BASE.fullmatch(_last(runtime, "FROM"))
    assert build_base is not None, _last(build, "FROM")
    assert runtime_base is not None, _last(runtime, "FROM")
    return build_base.group(1), runtime_base.group(1)


def _image_python() -> str:
    """Return the interpreter version the build stage installs for, e.g. ``3.13``."""
    [python] = [
        found.group(1)
        for env in _all(_stages()[0], "ENV")
        if (found := re.search(r"UV_PYTHON=/usr/bin/python(3\.\d+)", env))
    ]
    return python


def test_runtime_stage_is_distroless() -> None:
    """The runtime base has Python but no shell, package manager or compiler."""
    runtime = _stages()[-1]
    assert RUNTIME_BASE.fullmatch(_last(runtime, "FROM"))
    assert _all(runtime, "RUN") == []


def test_both_stages_are_on_a_supported_debian() -> None:
    """Debian 13 (trixie) at least: Debian 12 has left regular security support."""
    assert all(int(release) >= 13 for release in _debian_releases())


def test_build_and_runtime_share_the_python_interpreter() -> None:
    """The venv's interpreter link resolves in the runtime: same Debian release, same path."""
    build_release, runtime_release = _debian_releases()
    assert build_release == runtime_release
    assert _image_python() == DEBIAN_PYTHON[build_release]


def test_every_runtime_package_has_a_wheel_for_the_image() -> None:
    """The build stage has no compiler: each locked runtime package ships a usable wheel.

    Pure-Python, abi3 or a cp3XX wheel for the image's Python on linux/amd64.
    """
    python = _image_python()
    tag = "cp" + python.replace(".", "")
    minor = int(python.split(".")[1])
    abi3 = "|".join(f"cp3{older}" for older in range(2, minor + 1))
    usable = re.compile(
        rf"-(?:py3-none-any|py2\.py3-none-any|{tag}-{tag}-{IMAGE_PLATFORM}"
        rf"|(?:{abi3})-abi3-{IMAGE_PLATFORM})\.whl$"
    )
    locked = tomllib.loads((ROOT / "uv.lock").read_text())["package"]
    runtime = _locked_runtime_packages(python)
    wheels = {
        canonicalize_name(package["name"]): [wheel["url"] for wheel in package.get("wheels", [])]
        for package in locked
        if runtime.get(canonicalize_name(package["name"])) == package.get("version")
    }
    assert set(wheels) == set(runtime)
    missing = sorted(name for name, urls in wheels.items() if not any(map(usable.search, urls)))
    assert missing == []


def test_runtime_copies_only_the_venv_to_the_same_path() -> None:
    """The runtime receives the venv alone, where its absolute shebangs expect it."""
    runtime = _stages()[-1]
    assert _all(runtime, "COPY") == [f"--from=build {VENV_PATH} {VENV_PATH}"]


def test_runtime_runs_as_a_non_root_user() -> None:
    """The runtime's final USER is a numeric, non-zero uid."""
    user = _last(_stages()[-1], "USER")
    uid = user.split(":")[0]
    assert uid.isdigit()
    assert int(uid) != 0


def test_entrypoint_is_prowtrace_in_exec_form() -> None:
    """PID 1 is prowtrace itself (exec form), so it receives SIGTERM directly."""
    entrypoint = json.loads(_last(_stages()[-1], "ENTRYPOINT"))
    assert entrypoint == [f"{VENV_PATH}/bin/prowtrace"]


def test_default_command_is_serve() -> None:
    """Without arguments the image runs ``prowtrace serve``; ``pull`` replaces the CMD."""
    assert json.loads(_last(_stages()[-1], "CMD")) == ["serve"]


def test_no_secret_is_baked_into_the_image() -> None:
    """No ENV or ARG in any stage carries credentials or OTLP headers."""
    names = {name for stage in _stages() for name in _env_names(stage)}
    suspicious = {
        name
        for name in names
        if re.search(r"KEY|TOKEN|SECRET|PASSWORD|CREDENTIALS|HEADERS", name, re.IGNORECASE)
    }
    assert suspicious == set()
    assert "UV_PYTHON" in names  # the reader does see the ENV names


# --- the build context ------------------------------------------------------------------------


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """Translate one .dockerignore pattern (Go filepath.Match plus ``**``) to a regex."""
    parts: list[str] = []
    index = 0
    while index < len(pattern):
        if pattern.startswith("**/", index):
            parts.append("(?:.*/)?")
            index += 3
        elif pattern.startswith("**", index):
            parts.append(".*")
            index += 2
        elif pattern[index] == "*":
            parts.append("[^/]*")
            index += 1
        elif pattern[index] == "?":
            parts.append("[^/]")
            index += 1
        elif pattern[index] == "[":
            end = pattern.index("]", index)
            parts.append(pattern[index : end + 1])
            index = end + 1
        else:
            parts.append(re.escape(pattern[index]))
            index += 1
    return re.compile("".join(parts))


def excluded_from_context(path: str, dockerignore: str) -> bool:
    """Whether Docker leaves ``path`` out of the build context (last matching rule wins)."""
    excluded = False
    parents = path.split("/")
    candidates = ["/".join(parents[: depth + 1]) for depth in range(len(parents))]
    for raw in dockerignore.splitlines():
        rule = raw.strip()
        if not rule or rule.startswith("#"):
            continue
        negated = rule.startswith("!")
        pattern = _pattern_regex(rule.lstrip("!").strip("/"))
        if any(pattern.fullmatch(candidate) for candidate in candidates):
            excluded = not negated
    return excluded


def test_dockerignore_reader_follows_last_match_wins() -> None:
    """The test's .dockerignore reader re-includes and re-excludes like Docker does."""
    rules = "*\n!src/\n**/__pycache__\n"
    assert excluded_from_context("secret.json", rules)
    assert not excluded_from_context("src/a.py", rules)
    assert excluded_from_context("src/__pycache__/a.pyc", rules)


@pytest.mark.parametrize(
    "path",
    [
        "pyproject.toml",
        "uv.lock",
        "README.md",
        "scripts/install.sh",
        "processor/__init__.py",
        "processor/cli.py",
        "processor/core/__init__.py",
    ],
)
def test_build_context_holds_what_the_dockerfile_copies(path: str) -> None:
    """Every file the build stage copies reaches the build context."""
    assert (ROOT / path).exists()
    assert not excluded_from_context(path, DOCKERIGNORE.read_text())


@pytest.mark.parametrize(
    "path",
    [
        ".venv/bin/python",
        ".git/config",
        ".env",
        "credentials.json",
        "terraform/terraform.tfstate",
        "terraform/examples/prowtrace/terraform.tfvars",
        "tests/deploy/test_dockerfile.py",
        "processor/__pycache__/cli.cpython-311.pyc",
    ],
)
def test_build_context_leaves_out_everything_else(path: str) -> None:
    """Local environments, history, state, credentials and caches never reach the image."""
    assert excluded_from_context(path, DOCKERIGNORE.read_text())


def test_every_copied_source_is_allowed_by_dockerignore() -> None:
    """Each COPY source of the build stage is re-included by the .dockerignore allow-list."""
    sources = [
        source
        for arguments in _all(_stages()[0], "COPY")
        for source in arguments.split()[:-1]
        if not source.startswith("--")
    ]
    assert sources
    rules = DOCKERIGNORE.read_text()
    for source in sources:
        assert not excluded_from_context(source, rules), source


# --- the install path, exercised -------------------------------------------------------------


def _uv() -> str:
    uv = os.environ.get("UV") or shutil.which("uv")
    assert uv is not None, "uv must be installed: the image's install path needs it"
    return uv


def _locked_runtime_packages(python: str | None = None) -> dict[str, str]:
    """Name -> version of every runtime package uv.lock pins for ``python`` (default: this one)."""
    exported = subprocess.run(  # noqa: S603 - fixed argument list, no shell
        [_uv(), "export", "--frozen", "--no-dev", "--no-hashes", "--no-emit-project"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    environment = (
        None if python is None else {"python_version": python, "python_full_version": f"{python}.0"}
    )
    packages: dict[str, str] = {}
    for line in exported.splitlines():
        requirement, _, marker = line.partition(";")
        if not requirement or requirement.startswith((" ", "#")):
            continue
        if marker.strip() and not Marker(marker.strip()).evaluate(environment):
            continue
        name, _, version = requirement.strip().partition("==")
        packages[canonicalize_name(name)] = version
    return packages


@pytest.fixture(scope="module")
def installed_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run scripts/install.sh into a scratch venv, offline, from uv's cache (filled by uv sync)."""
    venv = tmp_path_factory.mktemp("image-install") / "venv"
    env = {key: value for key, value in os.environ.items() if key != "VIRTUAL_ENV"}
    env.update({"UV_OFFLINE": "1", "UV_PYTHON": sys.executable, "UV": _uv()})
    env["PATH"] = f"{Path(_uv()).parent}{os.pathsep}{env.get('PATH', '')}"
    result = subprocess.run(  # noqa: S603 - fixed argument list, no shell
        [str(INSTALL_SCRIPT), str(venv)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return venv


def _venv_python(venv: Path, code: str) -> str:
    return subprocess.run(  # noqa: S603 - fixed argument list, no shell
        [str(venv / "bin" / "python"), "-c", code],
        cwd=venv,  # not the repository, whose processor/ would shadow the installed one
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout


def test_install_script_provides_the_prowtrace_command(installed_venv: Path) -> None:
    """The installed ``prowtrace`` console script runs (the image's ENTRYPOINT)."""
    result = subprocess.run(  # noqa: S603 - fixed argument list, no shell
        [str(installed_venv / "bin" / "prowtrace"), "--version"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("prowtrace ")


def test_install_script_installs_exactly_the_locked_runtime_set(installed_venv: Path) -> None:
    """The venv holds prowtrace plus uv.lock's runtime pins, at those versions, nothing else."""
    listing = _venv_python(
        installed_venv,
        "import importlib.metadata as m, json;"
        "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))",
    )
    installed = {canonicalize_name(name): version for name, version in json.loads(listing).items()}
    expected = _locked_runtime_packages()
    assert installed.pop(canonicalize_name("prowtrace"), None) is not None
    assert installed == expected


def test_install_script_refuses_a_stale_lock(tmp_path: Path) -> None:
    """A uv.lock that no longer matches pyproject.toml fails the install (uv sync --locked)."""
    project = tmp_path / "project"
    for name in ("pyproject.toml", "uv.lock", "README.md", "scripts/install.sh"):
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, project / name)
    shutil.copytree(ROOT / "processor", project / "processor")
    pyproject = project / "pyproject.toml"
    text = pyproject.read_text()
    assert '    "defusedxml>=' in text
    pyproject.write_text(re.sub(r'\n    "defusedxml>=[^"]*",', "", text, count=1))
    env = {key: value for key, value in os.environ.items() if key != "VIRTUAL_ENV"}
    # Not offline, unlike the installs above: to find a lock stale, uv resolves the changed
    # requirements, which needs the registry's index pages, and a fresh machine's cache has none
    # (`uv sync --locked` downloads the locked files by URL and never fetches an index page).
    env["UV_PYTHON"] = sys.executable
    result = subprocess.run(  # noqa: S603 - fixed argument list, no shell
        [str(project / "scripts" / "install.sh"), str(tmp_path / "venv")],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode != 0
    assert "needs to be updated, but `--locked` was provided" in result.stderr
    assert not (tmp_path / "venv" / "bin" / "prowtrace").exists()


def test_install_script_installs_prowtrace_non_editable(installed_venv: Path) -> None:
    """The package is copied into the venv, so the runtime stage needs no source tree."""
    location = _venv_python(installed_venv, "import processor; print(processor.__file__)")
    assert Path(location.strip()).is_relative_to(installed_venv)
