"""relabel cases whose string parameters read as other values: "1", "true", "a,b=c", ""

Labels showed every string bare, so `f[n=1]` named both {"n": "1"} and {"n": 1}, and
{"a": "1,b=2"} printed as {"a": "1", "b": "2"}. Such strings are now quoted
(records.case_label): this rewrites the labels already stored, so the runner finds the
cases it records again. The label functions are copied here, frozen as of this revision.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PUNCTUATION = frozenset(',=[]"')


# What json.loads accepts as a whole text, without raising and catching an exception
# for every plain string: a number, one of its words, or (rare) an object.
_JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")
_JSON_WORDS = frozenset({"true", "false", "null", "NaN", "Infinity", "-Infinity"})


def _reads_as_json(text: str) -> bool:
    bare = text.strip(" \t\n\r")
    if bare in _JSON_WORDS or _JSON_NUMBER.fullmatch(bare):
        return True
    if not bare.startswith("{"):
        return False  # a string or an array would hold '"' or '[', quoted anyway
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _quoted(value: Any) -> str:
    if not isinstance(value, str):
        return json.dumps(value)
    if value == "" or _PUNCTUATION.intersection(value) or _reads_as_json(value):
        return json.dumps(value, ensure_ascii=False)
    return value


def _bare(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _label(name: str, params: Mapping[str, Any], show: Callable[[Any], str]) -> str:
    if not params:
        return name
    return f"{name}[{','.join(f'{k}={show(params[k])}' for k in sorted(params))}]"


_cases = sa.table(
    "cases",
    sa.column("id", sa.BigInteger),
    sa.column("name", sa.Text),
    sa.column("params", sa.JSON),
    sa.column("label", sa.Text),
)


def _relabel(show: Callable[[Any], str]) -> None:
    conn = op.get_bind()
    rows = conn.execute(sa.select(_cases.c.id, _cases.c.name, _cases.c.params, _cases.c.label))
    for row in rows.all():
        label = _label(row.name, row.params, show)
        if label != row.label:
            conn.execute(sa.update(_cases).where(_cases.c.id == row.id).values(label=label))


def upgrade() -> None:
    _relabel(_quoted)


def downgrade() -> None:
    _relabel(_bare)
