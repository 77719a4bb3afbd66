"""analysis/explain.py on hand-made tables: what leads, what is noise, which pair."""

from __future__ import annotations

import pytest
from rich.console import Console

from commitbench.analysis.explain import Candidate, explain, pair
from commitbench.cli import explaining
from commitbench.model.profile import Profile, op_table


def _profile(entries: list[tuple[str, int, float]], source: str = "cuda") -> Profile:
    return Profile(op_table(entries, 1, source), {"profile.launches_per_iter": 3.0}, {})


BASE = _profile([("flash_fwd_kernel", 1, 0.010), ("sm90_xmma_gemm", 2, 0.020)])
HEAD = _profile(
    [
        ("sm90_xmma_gemm", 4, 0.040),  # calls 2 -> 4
        ("softmax_warp_forward", 1, 0.012),  # new
        ("void at::native::vectorized_elementwise_kernel<4, CUDAFunctor_add>", 1, 0.0001),
    ]
)


def test_structural_changes_lead_largest_first() -> None:
    e = explain(BASE, HEAD)
    assert [(c.name, c.status) for c in e.changes] == [
        ("sm90_xmma_gemm", "calls"),  # +20 ms
        ("softmax_warp_forward", "new"),  # +12 ms
        ("flash_fwd_kernel", "vanished"),  # -10 ms
        ("void at::native::vectorized_elementwise_kernel<4, CUDAFunctor_add>", "new"),
    ]
    shares = {c: (b, h) for c, b, h in e.shares}
    assert shares["attention"] == (pytest.approx(1 / 3), 0.0)
    assert shares["reduction_softmax"][1] == pytest.approx(0.012 / 0.0521)


def test_time_alone_must_pass_the_noise() -> None:
    base = _profile([("a_gemm", 1, 0.100), ("b_gemm", 1, 0.100)])
    head = _profile([("a_gemm", 1, 0.109), ("b_gemm", 1, 0.120)])  # +9% and +20%
    e = explain(base, head)
    assert [(c.name, c.status) for c in e.changes] == [("b_gemm", "slower")]
    assert e.unchanged == 1


def test_kinds_must_match_and_pairs_share_a_machine() -> None:
    with pytest.raises(ValueError, match="differ in kind"):
        explain(BASE, _profile([("aten::mm", 1, 0.01)], "cpu"))

    def cand(machine: str, at: float) -> Candidate:
        return Candidate(machine, "full", at, f"run-{machine}-{at}", BASE)

    assert pair([cand("m1", 1.0), cand("m1", 2.0)], [cand("m2", 9.0), cand("m1", 3.0)]) == (
        cand("m1", 2.0),
        cand("m1", 3.0),
    )
    assert pair([cand("m1", 1.0)], [cand("m2", 2.0)]) is None


def test_the_terminal_title_keeps_the_case_id() -> None:
    case = "attention.single_head[d=64,impl=sdpa,seq=4096]"
    chosen = (Candidate("m", "full", 1.0, "r0", BASE), Candidate("m", "full", 2.0, "r1", HEAD))
    console = Console(width=300, record=True)
    console.print(
        explaining.rich(explain(BASE, HEAD), explaining.title(case, "a" * 40, "b" * 40, chosen))
    )
    text = console.export_text()
    assert f"{case}: aaaaaaaaaaaa → bbbbbbbbbbbb (kernels, device time, per iteration of 1)" in text
