"""Prow's ``Refs`` and ``Pull`` (``pkg/apis/prowjobs/v1/types.go``): what a job checks out.

Used by both crier's message (``refs``) and prowjob.json (``spec.refs`` / ``spec.extra_refs``).
"""

from __future__ import annotations

from dataclasses import dataclass

from processor.core.jsonshape import (
    JsonObject,
    get_bool,
    get_int,
    get_list,
    get_str,
    require_object,
)


@dataclass(frozen=True, slots=True)
class Pull:
    """One pull request under test."""

    number: int
    author: str = ""
    sha: str = ""
    title: str = ""
    ref: str = ""
    head_ref: str = ""
    link: str = ""


@dataclass(frozen=True, slots=True)
class Refs:
    """One repository a job clones, at a base ref, possibly with pull requests merged on top."""

    org: str
    repo: str
    repo_link: str = ""
    base_ref: str = ""
    base_sha: str = ""
    pulls: tuple[Pull, ...] = ()
    path_alias: str = ""
    clone_uri: str = ""
    skip_submodules: bool = False

    @property
    def full_name(self) -> str:
        """``org/repo``, the way Prow names a repository."""
        return f"{self.org}/{self.repo}"


def parse_pull(value: object, path: str) -> Pull:
    """Decode one Pull object."""
    obj = require_object(value, path)
    return Pull(
        number=get_int(obj, "number", path),
        author=get_str(obj, "author", path),
        sha=get_str(obj, "sha", path),
        title=get_str(obj, "title", path),
        ref=get_str(obj, "ref", path),
        head_ref=get_str(obj, "head_ref", path),
        link=get_str(obj, "link", path),
    )


def parse_refs(value: object, path: str) -> Refs:
    """Decode one Refs object."""
    obj: JsonObject = require_object(value, path)
    return Refs(
        org=get_str(obj, "org", path),
        repo=get_str(obj, "repo", path),
        repo_link=get_str(obj, "repo_link", path),
        base_ref=get_str(obj, "base_ref", path),
        base_sha=get_str(obj, "base_sha", path),
        pulls=tuple(
            parse_pull(item, f"{path}.pulls[{index}]")
            for index, item in enumerate(get_list(obj, "pulls", path))
        ),
        path_alias=get_str(obj, "path_alias", path),
        clone_uri=get_str(obj, "clone_uri", path),
        skip_submodules=get_bool(obj, "skip_submodules", path),
    )
