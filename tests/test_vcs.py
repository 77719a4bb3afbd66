"""vcs.py against real repositories: resolution, worktrees, and the user's tree untouched."""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path

import pytest

from commitbench.errors import CommitbenchError
from commitbench.runner import vcs
from commitbench.runner.vcs import Repository, RevSpec
from commitbench.runner.worktrees import WORKTREE_PREFIX
from tests.gitrepo import EPOCH, GitBuilder


@pytest.fixture
def history(tmp_path: Path) -> tuple[GitBuilder, list[str]]:
    """main: c1..c5, with a feature branch (f1, f2) merged after c3."""
    g = GitBuilder(tmp_path / "repo")
    shas = [g.commit("c1"), g.commit("c2"), g.commit("c3")]
    g.branch("feature")
    f1, f2 = g.commit("f1"), g.commit("f2")
    g.checkout("main")
    shas.append(g.merge("feature", "merge feature"))
    shas.append(g.commit("c5"))
    g.tag("v1")
    return g, [*shas, f1, f2]


def test_named_revisions_resolve_oldest_first(history: tuple[GitBuilder, list[str]]) -> None:
    g, (c1, _c2, _c3, m, c5, _f1, f2) = history
    repo = Repository(g.path)
    assert repo.resolve(RevSpec()) == [c5]
    assert repo.resolve(RevSpec(("v1", c1[:7], "main~1", c1))) == [c1, m, c5]
    assert repo.resolve(RevSpec(("feature",))) == [f2]


def test_ranges_and_filters(history: tuple[GitBuilder, list[str]]) -> None:
    g, (c1, c2, c3, m, c5, f1, f2) = history
    repo = Repository(g.path)
    assert repo.resolve(RevSpec((f"{c1}..main",))) == [c2, c3, f1, f2, m, c5]
    assert repo.resolve(RevSpec((f"{c1}..main",), first_parent=True)) == [c2, c3, m, c5]
    assert repo.resolve(RevSpec(("main",), max_count=2)) == [m, c5]
    since = (EPOCH.replace(minute=EPOCH.minute + 4)).isoformat()
    assert repo.resolve(RevSpec(("main",), since=since)) == [f1, f2, m, c5]


@pytest.mark.parametrize(
    ("revs", "branch"),
    [
        ((), "main"),  # HEAD, on main
        (("main",), "main"),
        (("origin/feature",), "feature"),
        (("v1..main",), "main"),
        (("HEAD",), "main"),
        (("origin/main",), "main"),
        (("main", "origin/main"), "main"),
        (("v1",), None),
        (("main~1",), None),
        (("main", "feature"), None),
        (("main", "v1"), None),
    ],
)
def test_branch_named_by_revisions(
    history: tuple[GitBuilder, list[str]],
    tmp_path: Path,
    revs: tuple[str, ...],
    branch: str | None,
) -> None:
    """`run main --max-count 20` records main; a tag or a sha records no branch."""
    g, shas = history
    clone = tmp_path / "clone"  # with origin/main and origin/feature
    subprocess.run(["git", "clone", "-q", str(g.path), str(clone)], check=True)
    repo = Repository(clone)
    assert repo.branch_named(revs) == branch
    assert repo.branch_named((shas[0],)) is None
    assert repo.branch_named((f"{shas[0]}..{shas[4]}",)) is None
    assert repo.branch_named(("origin/HEAD",)) is None
    subprocess.run(["git", "checkout", "-q", "--detach"], cwd=clone, check=True)
    assert repo.branch_named(()) is None  # a detached HEAD is on no branch


@pytest.mark.parametrize(
    ("rev", "message"),
    [
        ("nope", "revision 'nope' does not resolve to a commit in {root}"),
        ("main..nope", "revision 'nope' does not resolve to a commit in {root}"),
        ("a..b..c", "revision range 'a..b..c' must be A..B"),
        ("--all", "revision '--all' looks like an option"),
    ],
)
def test_bad_revisions(history: tuple[GitBuilder, list[str]], rev: str, message: str) -> None:
    g, _ = history
    repo = Repository(g.path)
    with pytest.raises(CommitbenchError) as err:
        repo.resolve(RevSpec((rev,)))
    assert str(err.value) == message.format(root=repo.root)


def test_not_a_repository(tmp_path: Path) -> None:
    with pytest.raises(CommitbenchError, match=f"^not a git repository: {tmp_path}$"):
        Repository(tmp_path)


def test_shallow_clone_says_so(history: tuple[GitBuilder, list[str]], tmp_path: Path) -> None:
    g, (c1, *_rest) = history
    clone = tmp_path / "shallow"
    subprocess.run(
        ["git", "clone", "-q", "--depth", "2", f"file://{g.path}", str(clone)], check=True
    )
    repo = Repository(clone)
    assert repo.shallow
    with pytest.raises(CommitbenchError, match="shallow clone, fetch more history"):
        repo.resolve(RevSpec((c1,)))


def test_commit_metadata(history: tuple[GitBuilder, list[str]]) -> None:
    g, (_c1, _c2, c3, m, _c5, _f1, f2) = history
    info = Repository(g.path).commit_info(m)
    assert info.sha == m
    assert info.parents == (c3, f2)
    assert (info.author_name, info.author_email, info.subject) == (
        "Ada",
        "ada@example.com",
        "merge feature",
    )
    assert info.committed_at == EPOCH.replace(minute=EPOCH.minute + 6)
    assert info.repository == str(g.path.resolve())


def test_repository_id_drops_credentials(history: tuple[GitBuilder, list[str]]) -> None:
    g, _ = history
    g.git("remote", "add", "origin", "https://bot:ghp_TOKEN@github.com/acme/model.git")
    assert Repository(g.path).id == "https://github.com/acme/model.git"


def _state(g: GitBuilder) -> tuple[str, str, str]:
    return g.head(), g.git("status", "--porcelain"), g.git("diff", "--cached")


def test_worktree_leaves_the_users_tree_alone(history: tuple[GitBuilder, list[str]]) -> None:
    g, (c1, *_rest) = history
    (g.path / "f1.txt").write_text("uncommitted edit\n")
    (g.path / "staged.txt").write_text("staged\n")
    g.git("add", "staged.txt")
    before = _state(g)
    repo = Repository(g.path)
    with repo.worktree(c1) as folder:
        assert folder.name.startswith(f"{WORKTREE_PREFIX}{os.getpid()}-")
        assert (folder / "f0.txt").read_text() == "c1"
        assert not (folder / "staged.txt").exists()
        assert repo.worktrees() == [folder]
    assert not folder.exists()
    assert repo.worktrees() == []
    assert _state(g) == before
    assert (g.path / "f1.txt").read_text() == "uncommitted edit\n"


def test_worktree_is_removed_on_error(history: tuple[GitBuilder, list[str]]) -> None:
    g, (c1, *_rest) = history
    repo = Repository(g.path)
    with pytest.raises(KeyboardInterrupt), repo.worktree(c1) as folder:
        raise KeyboardInterrupt
    assert not folder.exists()
    assert repo.worktrees() == []


def test_leftovers_of_dead_runs_are_pruned(
    history: tuple[GitBuilder, list[str]], tmp_path: Path
) -> None:
    g, (c1, *_rest) = history
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / f"{WORKTREE_PREFIX}{dead.pid}-abc"
    g.git("worktree", "add", "--detach", str(stale), c1)
    mine = tmp_path / f"{WORKTREE_PREFIX}{os.getpid()}-def"
    g.git("worktree", "add", "--detach", str(mine), c1)
    repo = Repository(g.path)
    assert repo.prune_worktrees() == [stale]
    assert not stale.exists()
    assert repo.worktrees() == [mine]


def test_concurrent_worktrees_and_prunes_on_one_repository(
    history: tuple[GitBuilder, list[str]],
) -> None:
    """Fleet runners share one clone: adding, pruning and removing worktrees at once
    must not trip over each other (git alone races: prune deletes the bookkeeping of a
    worktree that add is still creating)."""
    g, shas = history
    errors: list[BaseException] = []

    def churn() -> None:
        repo = Repository(g.path)
        try:
            for sha in shas[:6]:
                with repo.worktree(sha) as tree:
                    assert (tree / ".git").exists()
                repo.prune_worktrees()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=churn) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert Repository(g.path).worktrees() == []


def test_clone_and_fetch(history: tuple[GitBuilder, list[str]], tmp_path: Path) -> None:
    g, shas = history
    clone = vcs.clone(str(g.path), tmp_path / "clone")
    assert clone.id == str(g.path)  # results name the repository as it was cloned from
    assert clone.resolve(RevSpec(("main",))) == [shas[4]]
    new = g.commit("after the clone")
    assert not clone.has_commit(new)
    clone.fetch(new)
    assert clone.has_commit(new) and clone.resolve(RevSpec(("main",))) == [new]
