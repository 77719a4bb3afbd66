"""The worker conversation (runner/protocol.py) with plain events: what a worker may
say next, and the message for what it may not."""

from __future__ import annotations

from typing import Any

import pytest

from commitbench.model import wire
from commitbench.model.cases import CaseKey
from commitbench.model.records import ResultRecord
from commitbench.runner.protocol import Conversation, ProtocolError

A, B, C = CaseKey.of("m.a"), CaseKey.of("m.b"), CaseKey.of("m.c", {"s": "x\ny"})


def plan(*cases: CaseKey, **extra: Any) -> dict[str, Any]:
    return {"event": "plan", "cases": [wire.case_to_json(c) for c in cases], **extra}


def start(case: CaseKey) -> dict[str, Any]:
    return {"event": "start", "case": wire.case_to_json(case), "time": 0.0}


def result(case: CaseKey) -> dict[str, Any]:
    return {
        "event": "result",
        "result": wire.result_to_json(ResultRecord(case, "ok")),
        "windows": [],
    }


def refused(talk: Conversation, *events: dict[str, Any]) -> str:
    *before, last = events
    for event in before:
        talk.take(event)
    with pytest.raises(ProtocolError) as err:
        talk.take(last)
    return str(err.value)


def test_a_worker_that_keeps_to_its_plan() -> None:
    talk = Conversation(environment=True)
    events = [{"event": "environment", "environment": {}}, plan(A, B)]
    events += [start(A), result(A), start(B), result(B)]
    for event in events:
        talk.take(event)
    assert (talk.plan, talk.current, talk.started) == ((A, B), None, {"m.a", "m.b"})


def test_a_result_only_for_the_case_it_started() -> None:
    assert refused(Conversation(), plan(A, B), start(A), result(B)) == (
        "a result for m.b while m.a was running"
    )
    assert refused(Conversation(), plan(A, B), start(A), result(A), result(A)) == (
        "a result for m.a while no case was running"
    )
    assert refused(Conversation(), plan(A, C), start(A), result(C)) == (
        "a result for m.c[s=x\\ny] while m.a was running"  # one line, whatever the id
    )


def test_starts_follow_the_plan() -> None:
    assert refused(Conversation(), start(A)) == "a start of m.a, which is not in its plan"
    assert refused(Conversation(), plan(A), start(B)) == "a start of m.b, which is not in its plan"
    assert refused(Conversation(), plan(A, B), start(A), start(B)) == (
        "a start of m.b while m.a was running"
    )
    assert refused(Conversation(), plan(A), start(A), result(A), start(A)) == (
        "a second start of m.a"
    )


def test_one_plan_without_what_it_was_told_to_skip() -> None:
    assert refused(Conversation(), plan(A), start(A), plan(B)) == (
        "a second plan while m.a was running"
    )
    assert refused(Conversation(), plan(A, A)) == "a plan that names a case twice"
    assert refused(Conversation(skip=frozenset({"m.b"})), plan(A, B)) == (
        "a plan with m.b, which it was told to skip"
    )


def test_events_nobody_asked_for() -> None:
    assert refused(Conversation(), {"event": "environment", "environment": {}}) == (
        "an unexpected 'environment' event"
    )
    assert refused(Conversation(), plan(A), start(A), {"event": "error", "error": "x"}) == (
        "an unexpected 'error' event while m.a was running"
    )
    assert refused(Conversation(), {"event": "hello"}) == "an unexpected 'hello' event"


def test_a_listing_worker_answers_each_module_once() -> None:
    talk = Conversation(listing=("m", "n"), environment=True)
    talk.take({"event": "environment", "environment": {}})
    talk.take(plan(A, module="m"))
    assert refused(talk, plan(B, module="m")) == "an unexpected 'plan' event for module 'm'"
    talk = Conversation(listing=("m",))
    assert refused(talk, plan(A, module="other")) == (
        "an unexpected 'plan' event for module 'other'"
    )
    assert refused(Conversation(listing=("m",)), start(A)) == (
        "an unexpected 'start' event for module None"
    )
