"""Real git repositories for tests, built from operations (commits, branches, merges)."""

from __future__ import annotations

import os
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

EPOCH = datetime(2026, 10, 1, 9, 0, 0, tzinfo=timezone.utc)


class GitBuilder:
    """Each commit gets the next minute after EPOCH as author and committer date."""

    def __init__(self, path: Path, branch: str = "main") -> None:
        self.path = path
        self.clock = 0
        path.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", branch)
        self.git("config", "user.name", "Ada")
        self.git("config", "user.email", "ada@example.com")

    def git(self, *args: str, date: datetime | None = None) -> str:
        env = {**os.environ}
        if date is not None:
            env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = date.isoformat()
        proc = subprocess.run(
            ["git", *args], cwd=self.path, env=env, check=True, capture_output=True, text=True
        )
        return proc.stdout.strip()

    def next_date(self) -> datetime:
        self.clock += 1
        return EPOCH + timedelta(minutes=self.clock)

    def commit(self, message: str, files: dict[str, str] | None = None) -> str:
        for name, content in (files or {f"f{self.clock}.txt": message}).items():
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
            self.git("add", name)
        self.git("commit", "-q", "--allow-empty", "-m", message, date=self.next_date())
        return self.head()

    def branch(self, name: str) -> None:
        self.git("checkout", "-q", "-b", name)

    def checkout(self, name: str) -> None:
        self.git("checkout", "-q", name)

    def merge(self, name: str, message: str) -> str:
        self.git("merge", "-q", "--no-ff", "-m", message, name, date=self.next_date())
        return self.head()

    def tag(self, name: str) -> None:
        self.git("tag", name)

    def head(self) -> str:
        return self.git("rev-parse", "HEAD")
