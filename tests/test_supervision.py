"""supervision.decide with plain values: what every way a worker can end means.

No process is started here; tests/test_worker.py runs the same deaths in real workers.
"""

from __future__ import annotations

import signal

from commitbench.model.cases import CaseKey
from commitbench.runner.supervision import (
    OUTPUT_HEADING,
    Decision,
    Failure,
    WorkerEnd,
    decide,
    no_answer,
)

A, B, C = CaseKey.of("m.a"), CaseKey.of("m.b", {"n": 2}), CaseKey.of("m.c")
PLAN = (A, B, C)
KILL = -signal.SIGKILL


def died_in_b(**fields: object) -> Decision:
    """The worker ran A, started B and ended there; C is left."""
    end = WorkerEnd(plan=PLAN, done=frozenset({A.label}), current=B, results=1, **fields)  # type: ignore[arg-type]
    return decide("m", end, timeout_s=30)


def test_timeout_in_a_case() -> None:
    got = died_in_b(returncode=KILL, timed_out=True, oom_before=4, oom_after=5)
    assert got == Decision(
        dead=Failure(B, "timeout", "no result after 30 s; worker killed"), again=True
    )


def test_sigkill_while_the_oom_counter_rose_is_oom() -> None:
    got = died_in_b(returncode=KILL, oom_before=4, oom_after=5)
    assert got == Decision(
        dead=Failure(B, "oom", "worker killed by SIGKILL (the kernel OOM killer)"), again=True
    )


def test_sigkill_without_the_counter_rising_is_a_crash() -> None:
    got = died_in_b(returncode=KILL, oom_before=4, oom_after=4)
    assert got == Decision(
        dead=Failure(B, "crashed", "worker killed by signal SIGKILL"), again=True
    )


def test_sigkill_where_the_counter_cannot_be_read_is_taken_for_oom() -> None:
    assert died_in_b(returncode=KILL, oom_before=None, oom_after=None).dead == Failure(
        B, "oom", "worker killed by SIGKILL (the kernel OOM killer)"
    )
    assert died_in_b(returncode=KILL, oom_before=3, oom_after=None).dead == Failure(
        B, "oom", "worker killed by SIGKILL (the kernel OOM killer)"
    )


def test_other_signals_are_crashes() -> None:
    got = died_in_b(returncode=-signal.SIGSEGV, oom_before=1, oom_after=2)
    assert got.dead == Failure(B, "crashed", "worker killed by signal SIGSEGV")
    assert died_in_b(returncode=-signal.SIGABRT).dead == Failure(
        B, "crashed", "worker killed by signal SIGABRT"
    )
    assert died_in_b(returncode=-77).dead == Failure(
        B, "crashed", "worker killed by signal signal 77"
    )


def test_an_exit_in_a_case_is_a_crash_with_the_output_tail() -> None:
    got = died_in_b(returncode=3, output="about to exit\n")
    assert got == Decision(
        dead=Failure(
            B,
            "crashed",
            f"worker exited with code 3 during the case\n{OUTPUT_HEADING}\nabout to exit\n",
        ),
        again=True,
    )
    # Output of whitespace only adds nothing.
    assert died_in_b(returncode=0, output=" \n").dead == Failure(
        B, "crashed", "worker exited with code 0 during the case"
    )


def test_a_protocol_error_in_a_case_is_a_crash_even_though_we_killed_it() -> None:
    got = died_in_b(returncode=KILL, protocol_error="not JSON: b'x'", oom_before=None)
    assert got.dead == Failure(B, "crashed", "worker broke the result protocol: not JSON: b'x'")


def test_death_in_the_last_case_starts_no_other_worker() -> None:
    end = WorkerEnd(
        plan=PLAN, done=frozenset({A.label, B.label}), current=C, results=2, returncode=-6
    )
    assert decide("m", end, 30) == Decision(
        dead=Failure(C, "crashed", "worker killed by signal SIGABRT"), again=False
    )


def test_death_in_a_case_before_any_plan_tries_again() -> None:
    end = WorkerEnd(plan=None, current=A, returncode=1)
    assert decide("m", end, 30) == Decision(
        dead=Failure(A, "crashed", "worker exited with code 1 during the case"), again=True
    )


def test_every_case_done_is_the_end() -> None:
    done = frozenset(c.label for c in PLAN)
    assert decide("m", WorkerEnd(plan=PLAN, done=done, results=3, returncode=0), 30) == Decision()
    assert decide("m", WorkerEnd(plan=(), returncode=0), 30) == Decision()


def test_death_between_cases_after_progress_tries_again() -> None:
    end = WorkerEnd(plan=PLAN, done=frozenset({A.label}), results=1, returncode=-9)
    assert decide("m", end, 30) == Decision(again=True)


def test_death_between_cases_without_progress_fails_the_rest() -> None:
    # A second worker (A done by the first) that died before its first case.
    end = WorkerEnd(plan=PLAN, done=frozenset({A.label}), results=0, returncode=-11, output="x")
    message = f"worker killed by signal SIGSEGV before its next case\n{OUTPUT_HEADING}\nx"
    assert decide("m", end, 30) == Decision(
        failed=(Failure(B, "crashed", message), Failure(C, "crashed", message))
    )
    end = WorkerEnd(plan=PLAN, done=frozenset({A.label}), returncode=2)
    assert decide("m", end, 30).failed == (
        Failure(B, "crashed", "worker exited with code 2 before its next case"),
        Failure(C, "crashed", "worker exited with code 2 before its next case"),
    )


def test_a_worker_silent_before_its_first_case_is_a_timeout() -> None:
    end = WorkerEnd(plan=PLAN, returncode=KILL, timed_out=True)
    message = "no case started within 30 s; worker killed"
    assert decide("m", end, 30).failed == tuple(Failure(c, "timeout", message) for c in PLAN)


def test_a_protocol_error_between_cases_fails_the_rest() -> None:
    end = WorkerEnd(plan=PLAN, returncode=KILL, protocol_error="unknown message")
    message = "worker broke the result protocol: unknown message"
    assert decide("m", end, 30).failed == tuple(Failure(c, "crashed", message) for c in PLAN)


def test_a_protocol_error_with_nothing_left_fails_the_module() -> None:
    """A plan forged at import time, with its cases reported, then the real plan: the
    module's cases are unknown, and the broken protocol is said, not swallowed."""
    end = WorkerEnd(
        plan=(B,),
        done=frozenset({B.label}),
        results=1,
        returncode=KILL,
        protocol_error="a second plan",
    )
    assert decide("m", end, 30) == Decision(
        failed=(
            Failure(CaseKey.of("m"), "failed", "worker broke the result protocol: a second plan"),
        )
    )


def test_an_import_failure_is_one_failed_result_named_after_the_module() -> None:
    end = WorkerEnd(error="Traceback ...\nImportError: no lib", returncode=1)
    assert decide("pkg.bench_x", end, 30) == Decision(
        failed=(Failure(CaseKey.of("pkg.bench_x"), "failed", "Traceback ...\nImportError: no lib"),)
    )


def test_a_module_that_never_lists_its_cases() -> None:
    def module_message(**fields: object) -> str:
        (failure,) = decide("m", WorkerEnd(**fields), 30).failed  # type: ignore[arg-type]
        assert (failure.case, failure.status) == (CaseKey.of("m"), "failed")
        return failure.message

    assert module_message(returncode=KILL, timed_out=True) == (
        "importing the module took more than 30 s"
    )
    # A worker's start-up gets more than a case (launcher.STARTUP_TIMEOUT_S): that one.
    assert module_message(returncode=KILL, timed_out=True, silence_s=120.0) == (
        "importing the module took more than 120 s"
    )
    assert module_message(returncode=1, output="No module named commitbench\n") == (
        f"worker ended with code 1 before listing its cases\n{OUTPUT_HEADING}\n"
        "No module named commitbench\n"
    )
    assert module_message(returncode=-11) == (
        "worker killed by signal SIGSEGV before listing its cases"
    )
    assert module_message(start_error="/no/python: No such file or directory") == (
        "the worker could not start: /no/python: No such file or directory"
    )
    assert module_message(returncode=KILL, protocol_error="not JSON") == (
        "worker broke the result protocol: not JSON"
    )


def test_a_worker_that_could_not_start_fails_the_cases_of_a_known_plan() -> None:
    end = WorkerEnd(plan=PLAN, done=frozenset({A.label}), start_error="python: Permission denied")
    message = "the worker could not start: python: Permission denied"
    assert decide("m", end, 30).failed == (
        Failure(B, "failed", message),
        Failure(C, "failed", message),
    )


def test_an_error_event_fails_the_rest_even_after_progress() -> None:
    end = WorkerEnd(plan=PLAN, done=frozenset({A.label}), results=1, error="boom", returncode=1)
    assert decide("m", end, 30).failed == (
        Failure(B, "failed", "boom"),
        Failure(C, "failed", "boom"),
    )


def test_why_a_listing_or_probing_worker_did_not_answer() -> None:
    assert no_answer(WorkerEnd(start_error="python: Permission denied"), 30) == (
        "the worker could not start: python: Permission denied"
    )
    assert no_answer(WorkerEnd(returncode=KILL, timed_out=True), 30) == (
        "the worker sent nothing for 30 s; worker killed"
    )
    assert no_answer(WorkerEnd(returncode=KILL, protocol_error="not JSON"), 30) == (
        "worker broke the result protocol: not JSON"
    )
    assert no_answer(WorkerEnd(returncode=-signal.SIGBUS), 30) == (
        "worker killed by signal SIGBUS before answering"
    )
    assert no_answer(WorkerEnd(returncode=1, output="No module named x\n"), 30) == (
        f"worker ended with code 1 before answering\n{OUTPUT_HEADING}\nNo module named x\n"
    )
