"""Test data with exact, known values."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime, timedelta, timezone

from commitbench.model.cases import CaseKey
from commitbench.model.metrics import MetricRecord
from commitbench.model.records import (
    REMEASURE_ALL,
    CommitInfo,
    DeviceSample,
    MachineInfo,
    ResultRecord,
    RunHeader,
    RunInfo,
)

T0 = datetime(2026, 11, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)
SHA_A = "a" * 40
SHA_B = "b" * 40


def machine(gpu: str | None = "NVIDIA H100 80GB HBM3") -> MachineInfo:
    facts = {"cpu_model": "Test CPU", "cpu_count": 16, "ram_mib": 131072, "gpu_count": 0}
    if gpu:
        facts.update(
            gpu_name=gpu,
            gpu_count=1,
            gpu_memory_mib=81559,
            driver_version="550.54.15",
            cuda_version="12.4",
        )
    return MachineInfo.from_facts(**facts)


def commit(sha: str = SHA_A, repository: str = "https://example.com/acme/model.git") -> CommitInfo:
    return CommitInfo(
        repository=repository,
        sha=sha,
        parents=(SHA_B,) if sha != SHA_B else (),
        author_name="Ada",
        author_email="ada@example.com",
        authored_at=T0 - timedelta(hours=1),
        committed_at=T0 - timedelta(minutes=30),
        subject="Speed up the fused kernel",
    )


def header(
    run_id: uuid.UUID | None = None, sha: str = SHA_A, gpu: str | None = "NVIDIA H100 80GB HBM3"
) -> RunHeader:
    return RunHeader(
        run=RunInfo(
            id=run_id or uuid.uuid4(),
            started_at=T0,
            trigger="ci",
            profile="full",
            branch="main",
            environment={"python": "3.11.7", "packages": {"torch": "2.13.0"}},
        ),
        commit=commit(sha),
        machine=machine(gpu),
    )


def again(header: RunHeader, minutes: float = 1) -> RunHeader:
    """A later run of the same work that measures it again on purpose (--force, check's
    confirmation): without that, the store keeps the first run's results only."""
    return replace(
        header,
        run=replace(
            header.run,
            id=uuid.uuid4(),
            started_at=header.run.started_at + timedelta(minutes=minutes),
            environment={**header.run.environment, "remeasure": REMEASURE_ALL},
        ),
    )


def samples(n: int, start: datetime = T0, gpus: int = 2) -> tuple[DeviceSample, ...]:
    out = []
    for i in range(n):
        for g in range(gpus):
            out.append(
                DeviceSample(
                    time=start + timedelta(milliseconds=100 * i),
                    gpu_index=g,
                    gpu_util_pct=float(i % 101),
                    gpu_mem_mib=1024.5 + i,
                    power_w=300.25 + g,
                    sm_clock_mhz=1980.0,
                    temperature_c=55.0 + 0.1 * i,
                    throttle_reasons=4 * g,
                    cpu_util_pct=12.5,
                    rss_mib=2048.0 + 0.001 * i,
                )
            )
    return tuple(out)


def result(
    name: str = "matmul.matmul", i: int = 0, status: str = "ok", n_samples: int = 3
) -> ResultRecord:
    times = [0.001 * (i + 1) + 1e-6 * k for k in range(10)]
    metrics = (
        MetricRecord.from_samples(
            "time", times, unit="s", direction="lower", properties={"warmup": 3, "l2_flush": True}
        ),
        MetricRecord.from_samples(
            "tflops", [700.0 + i, 701.5 + i], unit="TFLOP/s", direction="higher"
        ),
        MetricRecord(
            name="peak_mem",
            unit="MiB",
            direction="lower",
            n=1,
            mean=512.0,
            median=512.0,
            min=512.0,
            max=512.0,
            samples=(512.0,),
        ),
    )
    return ResultRecord(
        case=CaseKey.of(name, {"shape": "4k", "impl": "fp16", "i": i}),
        status=status,
        error="CUDA out of memory" if status == "oom" else None,
        duration_s=1.25 + i,
        started_at=T0 + timedelta(seconds=i),
        metrics=metrics if status == "ok" else (),
        device_samples=samples(n_samples, T0 + timedelta(seconds=i)),
    )


def synthetic_history(
    store: object,
    levels: list[float],
    seed: int = 42,
    wall_per_cpu: list[float] | None = None,
) -> list[str]:
    """One run per commit of `matmul.matmul[shape=4k]` whose time is 10 ms x levels[i]
    (20 samples, CV 1%), with 40 device samples per run, and with `wall_per_cpu` the
    state metric of that name (model.state, one process). Returns the shas, oldest first."""
    import random

    from commitbench.model import state
    from commitbench.runner.recorder import MetricsRecorder

    rng = random.Random(seed)
    shas = [f"{i:040x}" for i in range(1, len(levels) + 1)]
    for i, (sha, level) in enumerate(zip(shas, levels, strict=True)):
        when = T0 + timedelta(hours=i)
        mean = 0.010 * level
        times = [rng.gauss(mean, mean * 0.01) for _ in range(20)]
        gpu = tuple(
            DeviceSample(
                time=when + timedelta(milliseconds=100 * k),
                gpu_index=0,
                gpu_util_pct=float(50 + (k % 50)),
                gpu_mem_mib=2000.0 + k,
                power_w=300.0 + k,
                cpu_util_pct=100.0,
                rss_mib=1500.0,
            )
            for k in range(40)
        )
        run_header = RunHeader(
            run=RunInfo(
                id=uuid.uuid4(), started_at=when, trigger="cron", profile="full", branch="main"
            ),
            commit=CommitInfo(
                repository="https://example.com/acme/model.git",
                sha=sha,
                committed_at=when,
                subject=f"commit {i}",
            ),
            machine=machine(),
        )
        with MetricsRecorder(store, run_header) as rec:  # type: ignore[arg-type]
            rec.add(
                ResultRecord(
                    case=CaseKey.of("matmul.matmul", {"shape": "4k"}),
                    status="ok",
                    duration_s=1.0,
                    started_at=when,
                    metrics=(
                        MetricRecord.from_samples("time", times, unit="s"),
                        *(
                            [
                                MetricRecord.from_samples(
                                    state.WALL_PER_CPU, [wall_per_cpu[i]], unit="ratio"
                                )
                            ]
                            if wall_per_cpu is not None
                            else []
                        ),
                    ),
                    device_samples=gpu,
                )
            )
    return shas
