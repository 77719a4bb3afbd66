from __future__ import annotations

from pathlib import Path

from commitbench.harness.discovery import find_modules


def test_finds_bench_modules_by_dotted_name(tmp_path: Path) -> None:
    for rel in (
        "benches/__init__.py",
        "benches/matmul.py",
        "benches/_common.py",
        "benches/llm/__init__.py",
        "benches/llm/attention.py",
        "benches/.hidden/x.py",
        "benches/not-a-name.py",
        "benches/notes.txt",
        "src/lib.py",
    ):
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
    assert find_modules(tmp_path) == ["benches.llm.attention", "benches.matmul"]
    assert find_modules(tmp_path, under=("src", "missing")) == ["src.lib"]
