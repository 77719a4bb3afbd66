"""Tokens in repository URLs: used to fetch, never stored, printed or written to disk.

A real git smart-HTTP server (git http-backend behind basic authentication) serves the
repository; the runner takes its credentials from git's own credential helper.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from commitbench.runner.vcs import credential_env, public_url
from tests.fleet.conftest import Fleet, tiny_repo
from tests.githttp import git_http, publish

TOKEN = "ghp_S3cretT0kenDoNotLeak"


def test_public_url_drops_user_and_password() -> None:
    assert public_url(f"https://bot:{TOKEN}@git.example/acme/model.git") == (
        "https://git.example/acme/model.git"
    )
    assert public_url(f"https://{TOKEN}@git.example/m.git") == "https://git.example/m.git"
    assert public_url("https://git.example/m.git") == "https://git.example/m.git"
    assert public_url("/srv/model") == "/srv/model"
    assert public_url("git@github.com:acme/model.git") == "git@github.com:acme/model.git"


def test_credentials_reach_git_through_its_environment_only() -> None:
    env = credential_env("https://x-access-token:a%2Fb%40c@git.example/m.git")
    assert env["COMMITBENCH_GIT_USERNAME"] == "x-access-token"
    assert env["COMMITBENCH_GIT_PASSWORD"] == "a/b@c"
    assert (env["GIT_CONFIG_KEY_0"], env["GIT_TERMINAL_PROMPT"]) == ("credential.helper", "0")
    assert "a/b@c" not in env["GIT_CONFIG_VALUE_0"]  # the helper reads the variable
    assert credential_env("https://git.example/m.git") == {}


def test_a_token_url_is_used_but_never_kept(  # type: ignore[no-untyped-def]
    cli,
    db_env: str,
    engine: Engine,
    fleet: Fleet,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (sha,) = tiny_repo(tmp_path / "src", 1)
    with git_http(tmp_path / "server", "bot", TOKEN) as server:
        publish(tmp_path / "src", server, "model")
        secret, public = server.url("model", credentials=True), server.url("model")
        cache = tmp_path / "enqueue-cache"
        args = ("--repo", secret, "--cache", str(cache), "--benches", "benches")
        out = cli("enqueue", *args, "--max-attempts", "1", "HEAD")
        assert out.code == 0, out.err
        assert out.out.endswith(f"1 job enqueued, 0 already queued: {public}\n")
        assert TOKEN not in out.text
        assert any(r.endswith(" auth") for r in server.requests)  # it did authenticate
        with engine.connect() as conn:
            stored = conn.execute(text("SELECT repository, sha FROM jobs")).all()
        assert [tuple(r) for r in stored] == [(public, sha)]
        listed = cli("jobs", "--json")
        assert TOKEN not in listed.text
        assert [j["repository"] for j in json.loads(listed.out)["jobs"]] == [public]
        on_disk = [p for p in cache.rglob("*") if p.is_file() and TOKEN.encode() in p.read_bytes()]
        assert on_disk == []

        # A runner with no credentials cannot fetch: the job fails, and says so without
        # ever seeing a token.
        blind = fleet.wait(fleet.start("--drain"), code=1)
        assert (blind["done"], blind["errored"]) == (0, 1)
        with engine.connect() as conn:
            state, error = conn.execute(text("SELECT state, error FROM jobs")).one()
        assert state == "parked"
        assert f"git clone of {public} failed" in error
        assert "could not read Username" in error and TOKEN not in error

        # A runner whose git has a credential helper (here `store`, configured through
        # git's environment) measures the commit under the public name.
        creds = tmp_path / "git-credentials"
        creds.write_text(f"http://bot:{TOKEN}@127.0.0.1:{server.port}\n")
        monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
        monkeypatch.setenv("GIT_CONFIG_KEY_0", "credential.helper")
        monkeypatch.setenv("GIT_CONFIG_VALUE_0", f"store --file={creds}")
        with engine.begin() as conn:
            conn.execute(text("UPDATE jobs SET state = 'pending', attempts = 0"))
        worker = fleet.start("--drain")
        assert fleet.wait(worker)["done"] == 1
        assert TOKEN not in fleet.log(worker)
    with engine.connect() as conn:
        recorded = conn.execute(
            text(
                "SELECT DISTINCT c.repository FROM results r JOIN runs u ON u.id = r.run_id "
                "JOIN commits c ON c.id = u.commit_id WHERE c.sha = :sha"
            ),
            {"sha": sha},
        ).all()
    assert [r[0] for r in recorded] == [public]
