"""Clone records as Prow's ``clonerefs`` writes them (``clone-records.json``).

What the real code does (kubernetes-sigs/prow, ``pkg/clonerefs/run.go`` and
``pkg/pod-utils/clone/clone.go`` at a619408), and this simulation follows:

* **Refs are cloned concurrently.** ``createRecords`` starts ``len(GitRefs)`` worker goroutines (or
  ``MaxParallelWorkers``) and collects one Record per ref from a channel, so records appear in
  *completion* order and their time spans overlap. Inside one record the commands run strictly one
  after another. A record has no start time; every record starts within a millisecond or two of
  the others, right after the process started.
* The output always begins with an extra, empty Record (``{"refs": {"org": "", "repo": ""}}``) that
  holds the SSH-agent/known-hosts/cookie-file setup commands when there are any.
* ``Duration`` fields are Go ``time.Duration``: integer nanoseconds. A record's ``duration``
  covers its commands plus two unrecorded ones (``git show -s --format=format:%ct HEAD`` after the
  base checkout and ``git rev-parse HEAD`` at the end), so the commands sum to slightly LESS than
  it. A failed record returns early: no ``final_sha`` and no ``duration`` (omitempty).
* A ``git fetch`` is retried after sleeps of 100 ms, 200 ms, ... 30 s (nine retries), and the
  retries are folded into ONE recorded command: the last attempt's output and error, a duration
  that includes every attempt and sleep. A flaky fetch therefore shows as one slow success; a
  fetch that never succeeds takes over a minute.
* Commands are recorded as ``PWD=<dir> <env joined by spaces> <command> <args>`` (so an empty env
  leaves two spaces), with git's combined stdout+stderr as ``output`` and ``exit status N`` as
  ``error``. Tokens clonerefs itself was given are censored to ``CENSORED``; credentials that come
  from elsewhere (a ``clone_uri`` with user-info, an environment variable) are not.

Deliberate departures, to give redaction something to find: the ``From <url>`` lines of fetch
output and git's error messages keep the URL's user-info (real git strips it in most places).
"""

from __future__ import annotations

import base64
import random
from dataclasses import dataclass
from typing import Any

from processor.synthetic.fleet import (
    CODE_ROOT,
    COMMIT_SUBJECTS,
    GIT_USER_EMAIL,
    GIT_USER_NAME,
    Repo,
    sha1_hex,
)

FETCH_RETRY_SLEEPS_NS = tuple(
    int(seconds * 1e9) for seconds in (0.1, 0.2, 0.4, 0.8, 2, 5, 10, 15, 30)
)
"""``fetchRetries`` in ``pkg/pod-utils/clone/clone.go``."""

_MS = 1_000_000


@dataclass(frozen=True, slots=True)
class CloneTarget:
    """One ref to clone, and how cloning it goes."""

    refs: dict[str, Any]
    """The Refs object exactly as in the ProwJob spec (copied into the record)."""
    repo: Repo
    fails: bool = False
    flaky: bool = False


@dataclass(frozen=True, slots=True)
class CloneRun:
    """What one clonerefs process did."""

    records: tuple[dict[str, Any], ...]
    """``clone-records.json`` entries, in file order."""
    wall_ns: int
    """From the container's start to the process exit."""
    failed: bool
    final_shas: tuple[str, ...]
    """``final_sha`` per target, in target order ("" when that clone failed)."""


def clone_env(token: str) -> str:
    """Return an environment giving git an ``Authorization`` header (as clonerefs logs it)."""
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    return (
        "GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=http.extraHeader "
        f"GIT_CONFIG_VALUE_0=Authorization: Basic {basic}"
    )


def authorization_value(token: str) -> str:
    """Return the credential part of :func:`clone_env`'s header (what a scrubber must remove)."""
    return base64.b64encode(f"x-access-token:{token}".encode()).decode()


def run_clonerefs(
    rng: random.Random, targets: list[CloneTarget], *, env: str, head_time_s: int
) -> CloneRun:
    """Simulate one clonerefs run over ``targets`` (cloned concurrently)."""
    process_start_ns = rng.randrange(40, 180) * _MS + rng.randrange(_MS)
    finished: list[tuple[int, int, dict[str, Any]]] = []
    final_shas: list[str] = []
    for index, target in enumerate(targets):
        record, wall_ns, final_sha = _clone_one(rng, target, env=env, head_time_s=head_time_s)
        start_ns = process_start_ns + rng.randrange(20_000, 1_500_000)
        finished.append((start_ns + wall_ns, index, record))
        final_shas.append(final_sha)
    finished.sort(key=lambda item: (item[0], item[1]))
    last_end_ns = max((end for end, _, _ in finished), default=process_start_ns)
    wall_ns = last_end_ns + rng.randrange(1, 8) * _MS + rng.randrange(_MS)
    records = ({"refs": {"org": "", "repo": ""}}, *(record for _, _, record in finished))
    return CloneRun(
        records=records,
        wall_ns=wall_ns,
        failed=any(record.get("failed", False) for record in records),
        final_shas=tuple(final_shas),
    )


def _ns(rng: random.Random, low_ms: float, high_ms: float) -> int:
    return int(rng.uniform(low_ms, high_ms) * _MS) + rng.randrange(1000)


class _Recorder:
    """Accumulates one record's commands the way ``runCommands`` does."""

    def __init__(self, directory: str, env: str) -> None:
        self.directory = directory
        self.env = env
        self.commands: list[dict[str, Any]] = []
        self.total_ns = 0

    def run(self, command: str, duration_ns: int, *, output: str = "", error: str = "") -> None:
        """Record ``command`` run in the clone directory with the shared environment."""
        self.add(f"PWD={self.directory} {self.env} {command}", duration_ns, output, error)

    def add(self, line: str, duration_ns: int, output: str = "", error: str = "") -> None:
        """Record a command line exactly as ``cloneCommand.String()`` formats it."""
        entry: dict[str, Any] = {"command": line}
        if output:
            entry["output"] = output
        if error:
            entry["error"] = error
        entry["duration"] = duration_ns
        self.commands.append(entry)
        self.total_ns += duration_ns


def _clone_one(
    rng: random.Random, target: CloneTarget, *, env: str, head_time_s: int
) -> tuple[dict[str, Any], int, str]:
    refs = target.refs
    repo = target.repo
    directory = f"{CODE_ROOT}/src/github.com/{refs['org']}/{refs['repo']}"
    uri = refs.get("clone_uri") or f"{refs.get('repo_link') or repo.link}.git"
    shown_url = uri.removesuffix(".git")
    rec = _Recorder(directory, env)
    rec.add(f"PWD=/ {env} mkdir -p {directory}", _ns(rng, 0.8, 4))
    rec.run("git init", _ns(rng, 3, 14), output=_init_output(directory))
    rec.run(f"git config user.name {GIT_USER_NAME}", _ns(rng, 1.5, 6))
    rec.run(f"git config user.email {GIT_USER_EMAIL}", _ns(rng, 1.5, 6))

    low_s, high_s = repo.fetch_seconds
    fetch_ns = _ns(rng, low_s * 1000, high_s * 1000)
    if target.fails:
        output = (
            "remote: Invalid username or token. Password authentication is not supported "
            "for Git operations.\n"
            f"fatal: Authentication failed for '{uri}/'\n"
        )
        attempts = len(FETCH_RETRY_SLEEPS_NS) + 1
        duration = sum(FETCH_RETRY_SLEEPS_NS) + sum(_ns(rng, 180, 650) for _ in range(attempts))
        rec.run(
            f"git fetch {uri} --tags --prune",
            duration,
            output=output,
            error="exit status 128",
        )
        record = {"refs": refs, "commands": rec.commands, "failed": True}
        return record, rec.total_ns, ""
    if target.flaky:
        # The failed attempt and the first backoff sleep are inside the one recorded duration.
        fetch_ns += _ns(rng, 2_000, 20_000) + FETCH_RETRY_SLEEPS_NS[0]
    tags_out = _fetch_output(
        shown_url, [("branch", "HEAD", "FETCH_HEAD")] + [("[new tag]", t, t) for t in repo.tags]
    )
    rec.run(f"git fetch {uri} --tags --prune", fetch_ns, output=tags_out)

    base_ref = refs.get("base_ref", repo.base_ref)
    base_sha = refs.get("base_sha", "")
    fetch_ref = base_sha or base_ref
    target_rev = base_sha or "FETCH_HEAD"
    head_sha = base_sha or sha1_hex(rng)
    rec.run(
        f"git fetch {uri} {fetch_ref}",
        _ns(rng, 250, 2500),
        output=_fetch_output(shown_url, [("branch", fetch_ref, "FETCH_HEAD")]),
    )
    subject = rng.choice(COMMIT_SUBJECTS).format(
        n=rng.randrange(1000, 9000), author="ci-robot", tag=(repo.tags or ("v0.1.0",))[-1]
    )
    rec.run(
        f"git checkout {target_rev}",
        _ns(rng, 80, 3000),
        output=_detached_output(target_rev, head_sha, subject),
    )
    rec.run(f"git branch --force {base_ref} {target_rev}", _ns(rng, 2, 9))
    rec.run(
        f"git checkout {base_ref}",
        _ns(rng, 6, 60),
        output=f"Switched to branch '{base_ref}'\n",
    )
    unrecorded_ns = _ns(rng, 2, 8)  # git show -s --format=format:%ct HEAD

    final_sha = head_sha
    fake_time = head_time_s
    for pull in refs.get("pulls", ()):
        sha = pull["sha"]
        rec.run(
            f"git fetch {uri} {sha}",
            _ns(rng, 300, 2500),
            output=_fetch_output(shown_url, [("branch", sha, "FETCH_HEAD")]),
        )
        fake_time += 1
        dates = f"GIT_AUTHOR_DATE={fake_time} GIT_COMMITTER_DATE={fake_time}"
        merge_env = f"{env} {dates}" if env else dates
        rec.add(
            f"PWD={directory} {merge_env} git merge --no-ff {sha}",
            _ns(rng, 40, 700),
            _merge_output(rng, repo),
        )
        final_sha = sha1_hex(rng)
    if not refs.get("skip_submodules", False):
        rec.run("git submodule update --init --recursive", _ns(rng, 6, 40))
    unrecorded_ns += _ns(rng, 2, 6)  # git rev-parse HEAD

    duration = rec.total_ns + unrecorded_ns
    record = {"refs": refs, "commands": rec.commands, "final_sha": final_sha, "duration": duration}
    return record, duration, final_sha


def _init_output(directory: str) -> str:
    return (
        "hint: Using 'master' as the name for the initial branch. This default branch name\n"
        "hint: is subject to change. To configure the initial branch name to use in all\n"
        "hint: of your new repositories, which will suppress this warning, call:\n"
        "hint:\n"
        "hint: \tgit config --global init.defaultBranch <name>\n"
        "hint:\n"
        "hint: Names commonly chosen instead of 'master' are 'main', 'trunk' and\n"
        "hint: 'development'. The just-created branch can be renamed via this command:\n"
        "hint:\n"
        "hint: \tgit branch -m <name>\n"
        f"Initialized empty Git repository in {directory}/.git/\n"
    )


def _fetch_output(url: str, entries: list[tuple[str, str, str]]) -> str:
    width = max(len(source) for _, source, _ in entries)
    lines = [f"From {url}"]
    lines.extend(f" * {kind:<17} {source:<{width}} -> {dest}" for kind, source, dest in entries)
    return "\n".join(lines) + "\n"


def _detached_output(target: str, sha: str, subject: str) -> str:
    return (
        f"Note: switching to '{target}'.\n\n"
        "You are in 'detached HEAD' state. You can look around, make experimental\n"
        "changes and commit them, and you can discard any commits you make in this\n"
        "state without impacting any branches by switching back to a branch.\n\n"
        "If you want to create a new branch to retain commits you create, you may\n"
        "do so (now or later) by using -c with the switch command. Example:\n\n"
        "  git switch -c <new-branch-name>\n\n"
        "Or undo this operation with:\n\n"
        "  git switch -\n\n"
        "Turn off this advice by setting config variable advice.detachedHead to false\n\n"
        f"HEAD is now at {sha[:7]} {subject}\n"
    )


def _merge_output(rng: random.Random, repo: Repo) -> str:
    files = rng.sample(repo.files, rng.randint(1, min(4, len(repo.files))))
    changes = [(path, rng.randint(0, 60), rng.randint(0, 25)) for path in files]
    changes = [(path, max(added, 1), removed) for path, added, removed in changes]
    width = max(len(path) for path, _, _ in changes)
    biggest = max(added + removed for _, added, removed in changes)
    scale = min(1.0, 50 / biggest)
    lines = ["Merge made by the 'ort' strategy."]
    for path, added, removed in changes:
        bar = "+" * max(1, round(added * scale)) + "-" * round(removed * scale)
        lines.append(f" {path:<{width}} | {added + removed:>2} {bar}")
    insertions = sum(added for _, added, _ in changes)
    deletions = sum(removed for _, _, removed in changes)
    summary = f" {len(changes)} file{'s' if len(changes) > 1 else ''} changed"
    summary += f", {insertions} insertion{'s' if insertions != 1 else ''}(+)"
    if deletions:
        summary += f", {deletions} deletion{'s' if deletions != 1 else ''}(-)"
    lines.append(summary)
    return "\n".join(lines) + "\n"
