"""The authoring API: `@bench`, parameter grids, requirements, profiles and `Context`.

```python
import commitbench as cb

@cb.bench(params={"n": [1024, 8192]}, requires=("cuda",))
def matmul(ctx: cb.Context, n: int) -> None:
    import torch
    n = ctx.pick(smoke=64, full=n)
    a = torch.randn(n, n, device=ctx.device, dtype=torch.bfloat16)
    ctx.time("matmul", lambda: a @ a, flops=2 * n**3, dtype="bf16")
```

A case is `module.function[k=v,...]` (cases.CaseKey): the grid is the cartesian
product of `params` in the order written, and the label sorts the keys, so reordering a
dict does not rename a series. A bench runs in the profiles it lists (`smoke`: tiny
sizes on CPU in CI; `full`: real sizes on a GPU); `ctx.pick(smoke=..., full=...)`
chooses sizes, and `ctx.note(n=n)` records the ones actually used (a smoke case keeps its
full-size name). Requirements that the machine lacks mark the case `skipped` with the
reason.

This module declares benches: the decorator, `Bench` and its grid, requirements. The
`Context` a bench gets is context.py, and what the machine offers (`Probe`,
`cuda_initialized`) probe.py; `commitbench` exports all of them. Nothing here imports
torch.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import overload

from commitbench.harness.timing import TimingPolicy
from commitbench.model.cases import CaseKey, ParamValue
from commitbench.model.records import PROFILES

BenchFn = Callable[..., object]
MARK = "__commitbench_bench__"

_MIN_RULE = re.compile(r"^(gpus|gpu_mem_gib)\s*>=\s*(\d+(?:\.\d+)?)$")


class Skipped(Exception):
    """Raised by `ctx.skip(reason)`; the case is recorded as `skipped` with the reason."""


def parse_requirement(text: str) -> tuple[str, float | None]:
    """'cuda' -> ('cuda', None); 'gpus>=2' -> ('gpus', 2.0); 'triton' -> ('triton', None)."""
    rule = _MIN_RULE.match(text.strip())
    if rule:
        return rule.group(1), float(rule.group(2))
    if not re.match(r"^[A-Za-z_][\w.]*$", text):
        raise ValueError(f"requirement {text!r}: use cuda, gpus>=N, gpu_mem_gib>=N or a module")
    return text, None


@dataclass(frozen=True)
class Bench:
    """A decorated bench function and everything needed to expand it into cases."""

    fn: BenchFn
    name: str
    params: tuple[tuple[str, tuple[ParamValue, ...]], ...] = ()
    requires: tuple[str, ...] = ()
    profiles: tuple[str, ...] = PROFILES
    policy: TimingPolicy = field(default_factory=TimingPolicy)

    def __post_init__(self) -> None:
        for p in self.profiles:
            if p not in PROFILES:
                raise ValueError(f"{self.name}: unknown profile {p!r}")
        for r in self.requires:
            parse_requirement(r)
        for key, values in self.params:
            if not values:
                raise ValueError(f"{self.name}: param {key} has no values")
        CaseKey.of(self.name)  # validates the name

    def grid(self) -> list[dict[str, ParamValue]]:
        """The parameter mappings of its cases, in the order written."""
        keys = [k for k, _ in self.params]
        grid = itertools.product(*(values for _, values in self.params))
        return [dict(zip(keys, combo, strict=True)) for combo in grid]

    def cases(self) -> tuple[CaseKey, ...]:
        return tuple(CaseKey.of(self.name, params) for params in self.grid())


@overload
def bench(fn: BenchFn, /) -> BenchFn: ...


@overload
def bench(
    *,
    params: Mapping[str, Iterable[ParamValue]] | None = None,
    requires: Sequence[str] = (),
    profiles: Sequence[str] = PROFILES,
    min_gpus: int | None = None,
    min_gpu_mem_gib: float | None = None,
    policy: TimingPolicy | None = None,
    name: str | None = None,
) -> Callable[[BenchFn], BenchFn]: ...


def bench(
    fn: BenchFn | None = None,
    /,
    *,
    params: Mapping[str, Iterable[ParamValue]] | None = None,
    requires: Sequence[str] = (),
    profiles: Sequence[str] = PROFILES,
    min_gpus: int | None = None,
    min_gpu_mem_gib: float | None = None,
    policy: TimingPolicy | None = None,
    name: str | None = None,
) -> BenchFn | Callable[[BenchFn], BenchFn]:
    """Mark a function `f(ctx, **params)` as a bench; it stays callable as written."""
    if isinstance(requires, str):
        requires = (requires,)
    rules = list(requires)
    if min_gpus is not None:
        rules.append(f"gpus>={min_gpus}")
    if min_gpu_mem_gib is not None:
        rules.append(f"gpu_mem_gib>={min_gpu_mem_gib}")

    def mark(f: BenchFn) -> BenchFn:
        if name is None and "<locals>" in f.__qualname__:
            raise ValueError(f"{f.__qualname__}: define benches at module level, or pass name=")
        spec = Bench(
            fn=f,
            name=name or f"{f.__module__}.{f.__qualname__}",
            params=tuple((k, tuple(v)) for k, v in (params or {}).items()),
            requires=tuple(rules),
            profiles=tuple(profiles),
            policy=policy or TimingPolicy(),
        )
        setattr(f, MARK, spec)
        return f

    return mark(fn) if fn is not None else mark


def benches_of(module: object) -> tuple[Bench, ...]:
    """The benches defined in a module (not ones it imported), in definition order."""
    found = []
    mod_name = getattr(module, "__name__", None)
    for value in vars(module).values():
        spec = getattr(value, MARK, None)
        if isinstance(spec, Bench) and getattr(value, "__module__", None) == mod_name:
            found.append(spec)
    return tuple(found)
