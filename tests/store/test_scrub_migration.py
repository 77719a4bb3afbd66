"""Migration 0005: repository URLs stored with `user:token@` lose their credentials, and
rows that become equal under a unique constraint are merged as its docstring says."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Connection, text
from sqlalchemy.engine import URL

from commitbench.runner.vcs import public_url
from commitbench.store import engine as dbengine
from commitbench.store import migrate

MIGRATION = Path(__file__).parents[2] / "migrations/versions/0005_scrub_repository_credentials.py"

SHA1 = "1" * 40
SHA2 = "2" * 40
SHA3 = "3" * 40
CLEAN = "https://git.example/r.git"
TOKEN1 = "https://bot:TOKEN1@git.example/r.git"
TOKEN2 = "https://bot:TOKEN2@git.example/r.git"
OTHER = "https://other:TOKEN3@git.example/r.git"
SCP = "git@github.com:o/r.git"  # no scheme: no userinfo to strip, stays as it is

RUN = "00000000-0000-0000-0000-00000000000{}"


def _insert(conn: Connection, name: str, **values: Any) -> int:
    table = sa.table(name, sa.column("id"), *(sa.column(k) for k in values))
    return int(conn.execute(sa.insert(table).values(**values).returning(table.c.id)).scalar_one())


def _commit(conn: Connection, repository: str, sha: str) -> int:
    return _insert(conn, "commits", repository=repository, sha=sha)


def _run(conn: Connection, n: int, commit: int, machine: int) -> None:
    conn.execute(
        text(
            "INSERT INTO runs (id, commit_id, machine_id, trigger, profile, started_at) "
            "VALUES (CAST(:id AS uuid), :c, :m, 'manual', 'smoke', now())"
        ),
        {"id": RUN.format(n), "c": commit, "m": machine},
    )


def _regression(conn: Connection, commit: int, metric: str, state: str, **more: Any) -> int:
    return _insert(
        conn,
        "regressions",
        case_id=1,
        metric=metric,
        machine_id=1,
        profile="smoke",
        commit_id=commit,
        baseline=1.0,
        value=2.0,
        change_pct=100.0,
        method="test",
        state=state,
        **more,
    )


def _job(conn: Connection, repository: str, sha: str, state: str, **more: Any) -> int:
    if state == "running":
        more |= {"lease_owner": "runner-a", "lease_expires_at": "2026-11-30T10:00:00+00"}
    return _insert(conn, "jobs", repository=repository, sha=sha, state=state, **more)


def _seed(conn: Connection) -> dict[str, int]:
    ids: dict[str, int] = {}
    conn.execute(text("INSERT INTO machines (fingerprint) VALUES (:f)"), {"f": "f" * 64})
    conn.execute(text("INSERT INTO cases (name, label) VALUES ('m.f', 'm.f')"))
    # sha1: two tokened rows and the clean one, created between them. The clean row
    # survives even though a tokened one is older.
    ids["c_token1_sha1"] = _commit(conn, TOKEN1, SHA1)
    ids["c_clean_sha1"] = _commit(conn, CLEAN, SHA1)
    ids["c_token2_sha1"] = _commit(conn, TOKEN2, SHA1)
    # sha2: no clean row; the oldest tokened row becomes it, the other merges into it.
    ids["c_token1_sha2"] = _commit(conn, TOKEN1, SHA2)
    ids["c_other_sha2"] = _commit(conn, OTHER, SHA2)
    # Not URLs with userinfo: untouched.
    ids["c_scp_sha3"] = _commit(conn, SCP, SHA3)
    ids["c_path_sha1"] = _commit(conn, "/srv/repos/r", SHA1)
    for n, name in enumerate(
        ("c_token1_sha1", "c_clean_sha1", "c_token2_sha1", "c_other_sha2", "c_scp_sha3")
    ):
        _run(conn, n, ids[name], 1)
    # The same series on the tokened and the clean commit: the acknowledged one (on the
    # tokened row) is further along and stays.
    ids["r_ack_token1"] = _regression(conn, ids["c_token1_sha1"], "m", "acknowledged")
    ids["r_open_clean"] = _regression(conn, ids["c_clean_sha1"], "m", "open")
    # Same series again: the survivor's is fixed, the tokened row's open one goes.
    ids["r_fixed_clean"] = _regression(conn, ids["c_clean_sha1"], "n", "fixed")
    ids["r_open_token2"] = _regression(conn, ids["c_token2_sha1"], "n", "open")
    # No partner: re-pointed; and a baseline on a merged commit.
    ids["r_other_token2"] = _regression(
        conn, ids["c_token2_sha1"], "o", "open", baseline_commit_id=ids["c_other_sha2"]
    )

    # Jobs: sha1, both pending: the oldest stays (and loses its token).
    ids["j_token1_sha1"] = _job(conn, TOKEN1, SHA1, "pending")
    ids["j_clean_sha1"] = _job(conn, CLEAN, SHA1, "pending")
    # sha2: done beats running beats pending, whatever their age.
    ids["j_clean_sha2"] = _job(conn, CLEAN, SHA2, "pending")
    ids["j_other_sha2"] = _job(conn, OTHER, SHA2, "running")
    ids["j_token2_sha2"] = _job(conn, TOKEN2, SHA2, "done")
    # sha1 with another profile: other work, no collision; the error quotes the URL.
    ids["j_token1_sha1_full"] = _job(
        conn,
        TOKEN1,
        SHA1,
        "failed",
        profile="full",
        error=f"GitError: git fetch {TOKEN1} failed; see HTTP://u:p@h/x and user@example.org",
    )
    ids["j_scp_sha3"] = _job(conn, SCP, SHA3, "parked")
    return ids


def test_credentials_are_scrubbed_and_collisions_merged(fresh_url: URL) -> None:
    eng = dbengine.make_engine(fresh_url)
    try:
        migrate.upgrade(eng, "0004")
        with eng.begin() as conn:
            ids = _seed(conn)
        migrate.upgrade(eng, "0005")
        with eng.connect() as conn:
            commits = conn.execute(
                text("SELECT id, repository, sha FROM commits ORDER BY id")
            ).all()
            runs = conn.execute(text("SELECT id::text, commit_id FROM runs ORDER BY id")).all()
            regressions = conn.execute(
                text(
                    "SELECT id, metric, commit_id, baseline_commit_id, state "
                    "FROM regressions ORDER BY id"
                )
            ).all()
            jobs = conn.execute(
                text("SELECT id, repository, sha, profile, state, error FROM jobs ORDER BY id")
            ).all()
        keep1, keep2 = ids["c_clean_sha1"], ids["c_token1_sha2"]
        assert [tuple(c) for c in commits] == [
            (keep1, CLEAN, SHA1),
            (keep2, CLEAN, SHA2),
            (ids["c_scp_sha3"], SCP, SHA3),
            (ids["c_path_sha1"], "/srv/repos/r", SHA1),
        ]
        assert [tuple(r) for r in runs] == [
            (RUN.format(0), keep1),
            (RUN.format(1), keep1),
            (RUN.format(2), keep1),
            (RUN.format(3), keep2),
            (RUN.format(4), ids["c_scp_sha3"]),
        ]
        assert [tuple(r) for r in regressions] == [
            (ids["r_ack_token1"], "m", keep1, None, "acknowledged"),
            (ids["r_fixed_clean"], "n", keep1, None, "fixed"),
            (ids["r_other_token2"], "o", keep1, keep2, "open"),
        ]
        assert [tuple(j) for j in jobs] == [
            (ids["j_token1_sha1"], CLEAN, SHA1, "auto", "pending", None),
            (ids["j_token2_sha2"], CLEAN, SHA2, "auto", "done", None),
            (
                ids["j_token1_sha1_full"],
                CLEAN,
                SHA1,
                "full",
                "failed",
                f"GitError: git fetch {CLEAN} failed; see HTTP://h/x and user@example.org",
            ),
            (ids["j_scp_sha3"], SCP, SHA3, "auto", "parked", None),
        ]

        # Downgrade keeps the scrubbed rows (the tokens are gone on purpose); upgrading
        # again finds nothing to change.
        migrate.downgrade(eng, "0004")
        migrate.upgrade(eng, "0005")
        with eng.connect() as conn:
            again = conn.execute(text("SELECT id, repository, sha FROM commits ORDER BY id")).all()
            assert again == commits
            assert (
                conn.execute(text("SELECT count(*) FROM jobs WHERE repository LIKE '%@%'"))
            ).scalar_one() == 1  # the scp-style job, which has no userinfo
    finally:
        eng.dispose()


def _migration():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("scrub_0005", MIGRATION)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


scrub = _migration()

_url_part = st.text(alphabet="abcXYZ09:@/._-%+", max_size=12)


@given(st.sampled_from(["https://", "ssh://", "git+ssh://", "", "HTTP://"]), _url_part, _url_part)
def test_the_migrations_frozen_rule_is_todays(scheme: str, user: str, rest: str) -> None:
    """0005 keeps a copy of public_url (a migration must not change with the code):
    today the two agree."""
    url = f"{scheme}{user}@{rest}"
    assert scrub._public_url(url) == public_url(url)
