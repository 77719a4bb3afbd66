"""relabel cases whose string parameters read as other values: "1", "true", "a,b=c", ""

Labels showed every string bare, so `f[n=1]` named both {"n": "1"} and {"n": 1}, and
{"a": "1,b=2"} printed as {"a": "1", "b": "2"}. Such strings are now quoted
(records.case_label): this rewrites the labels already stored, so the runner finds the
cases it records again. The label functions are copied here, frozen as of this revision.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PUNCTUATION = frozenset(',=[]"')


def _reads_as_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _quoted(value: Any) -> str:
    if isinstance(value, str) and not (
        value == "" or _PUNCTUATION.intersection(value) or _reads_as_json(value)
    ):
        return value
    return json.dumps(value, ensure_ascii=False)


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
