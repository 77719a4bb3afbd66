"""create the results schema: machines, commits, runs, cases, results, metrics,
device_samples, regressions

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)
F8 = sa.Float(53)
EMPTY_OBJECT = sa.text("'{}'::jsonb")


DEVICE_SAMPLE_TRIGGERS = (
    """
    CREATE FUNCTION device_samples_check_refs() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        bad_run boolean;
        bad_result boolean;
    BEGIN
        WITH refs AS (SELECT DISTINCT run_id, result_id FROM new_samples)
        SELECT bool_or(ru.id IS NULL),
               bool_or(refs.result_id IS NOT NULL AND re.id IS NULL)
        INTO bad_run, bad_result
        FROM refs
        LEFT JOIN runs ru ON ru.id = refs.run_id
        LEFT JOIN results re ON re.id = refs.result_id AND re.run_id = refs.run_id;
        IF bad_run THEN
            RAISE EXCEPTION 'device_samples.run_id refers to no run'
                USING ERRCODE = 'foreign_key_violation';
        END IF;
        IF bad_result THEN
            RAISE EXCEPTION 'device_samples.result_id refers to no result of its run'
                USING ERRCODE = 'foreign_key_violation';
        END IF;
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER device_samples_check_refs AFTER INSERT ON device_samples
    REFERENCING NEW TABLE AS new_samples
    FOR EACH STATEMENT EXECUTE FUNCTION device_samples_check_refs()
    """,
    """
    CREATE FUNCTION device_samples_delete_with_results() RETURNS trigger LANGUAGE plpgsql
    AS $$
    BEGIN
        DELETE FROM device_samples d USING gone g WHERE d.result_id = g.id;
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER device_samples_delete_with_results AFTER DELETE ON results
    REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION device_samples_delete_with_results()
    """,
    """
    CREATE FUNCTION device_samples_delete_with_runs() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        DELETE FROM device_samples d USING gone g
        WHERE d.result_id IS NULL AND d.run_id = g.id;
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER device_samples_delete_with_runs AFTER DELETE ON runs
    REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION device_samples_delete_with_runs()
    """,
)


def _id() -> sa.Column[int]:
    return sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "machines",
        _id(),
        sa.Column("fingerprint", sa.Text, nullable=False),
        sa.Column("gpu_name", sa.Text),
        sa.Column("gpu_count", sa.Integer, server_default=sa.text("0"), nullable=False),
        sa.Column("gpu_memory_mib", sa.BigInteger),
        sa.Column("driver_version", sa.Text),
        sa.Column("cuda_version", sa.Text),
        sa.Column("cpu_model", sa.Text),
        sa.Column("cpu_count", sa.Integer),
        sa.Column("ram_mib", sa.BigInteger),
        sa.Column("info", pg.JSONB, server_default=EMPTY_OBJECT, nullable=False),
        sa.Column("created_at", TZ, server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_machines"),
        sa.UniqueConstraint("fingerprint", name="uq_machines_fingerprint"),
        sa.CheckConstraint("gpu_count >= 0", name=op.f("ck_machines_gpu_count_non_negative")),
        sa.CheckConstraint(
            "char_length(fingerprint) = 64", name=op.f("ck_machines_fingerprint_sha256")
        ),
    )
    op.create_table(
        "commits",
        _id(),
        sa.Column("repository", sa.Text, nullable=False),
        sa.Column("sha", sa.Text, nullable=False),
        sa.Column("parents", pg.ARRAY(sa.Text), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("author_name", sa.Text),
        sa.Column("author_email", sa.Text),
        sa.Column("authored_at", TZ),
        sa.Column("committed_at", TZ),
        sa.Column("subject", sa.Text),
        sa.PrimaryKeyConstraint("id", name="pk_commits"),
        sa.UniqueConstraint("repository", "sha", name="uq_commits_repository_sha"),
        sa.CheckConstraint(
            "sha ~ '^[0-9a-f]{40}([0-9a-f]{24})?$'", name=op.f("ck_commits_sha_full_hex")
        ),
    )
    op.create_index("ix_commits_repository_committed_at", "commits", ["repository", "committed_at"])

    op.create_table(
        "runs",
        sa.Column("id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("commit_id", sa.BigInteger, nullable=False),
        sa.Column("machine_id", sa.BigInteger, nullable=False),
        sa.Column("branch", sa.Text),
        sa.Column("trigger", sa.Text, nullable=False),
        sa.Column("profile", sa.Text, nullable=False),
        sa.Column("environment", pg.JSONB, server_default=EMPTY_OBJECT, nullable=False),
        sa.Column("started_at", TZ, nullable=False),
        sa.Column("finished_at", TZ),
        sa.Column("status", sa.Text, server_default=sa.text("'running'"), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
        sa.ForeignKeyConstraint(["commit_id"], ["commits.id"], name="fk_runs_commit_id_commits"),
        sa.ForeignKeyConstraint(
            ["machine_id"], ["machines.id"], name="fk_runs_machine_id_machines"
        ),
        sa.CheckConstraint(
            "trigger IN ('cron', 'ci', 'manual')", name=op.f("ck_runs_trigger_known")
        ),
        sa.CheckConstraint("profile IN ('smoke', 'full')", name=op.f("ck_runs_profile_known")),
        sa.CheckConstraint(
            "status IN ('running', 'ok', 'failed', 'interrupted')",
            name=op.f("ck_runs_status_known"),
        ),
        sa.CheckConstraint(
            "finished_at IS NULL OR finished_at >= started_at",
            name=op.f("ck_runs_finished_after_start"),
        ),
    )
    op.create_index(
        "ix_runs_commit_id_machine_id_profile", "runs", ["commit_id", "machine_id", "profile"]
    )
    op.create_index("ix_runs_machine_id_branch", "runs", ["machine_id", "branch"])
    op.create_index("ix_runs_started_at", "runs", ["started_at"])

    op.create_table(
        "cases",
        _id(),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("params", pg.JSONB, server_default=EMPTY_OBJECT, nullable=False),
        sa.Column("label", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_cases"),
        sa.UniqueConstraint("name", "params", name="uq_cases_name_params"),
        sa.UniqueConstraint("label", name="uq_cases_label"),
        sa.CheckConstraint("jsonb_typeof(params) = 'object'", name=op.f("ck_cases_params_object")),
    )

    op.create_table(
        "results",
        _id(),
        sa.Column("run_id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("case_id", sa.BigInteger, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("duration_s", F8),
        sa.Column("started_at", TZ),
        sa.PrimaryKeyConstraint("id", name="pk_results"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_results_run_id_runs", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name="fk_results_case_id_cases"),
        sa.UniqueConstraint("run_id", "case_id", name="uq_results_run_id_case_id"),
        sa.CheckConstraint(
            "status IN ('ok', 'skipped', 'failed', 'timeout', 'oom', 'crashed')",
            name=op.f("ck_results_status_known"),
        ),
        sa.CheckConstraint(
            "duration_s IS NULL OR duration_s >= 0", name=op.f("ck_results_duration_non_negative")
        ),
    )
    op.create_index("ix_results_case_id_run_id", "results", ["case_id", "run_id"])

    op.create_table(
        "metrics",
        _id(),
        sa.Column("result_id", sa.BigInteger, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("unit", sa.Text, nullable=False),
        sa.Column("direction", sa.Text, nullable=False),
        sa.Column("n", sa.Integer, nullable=False),
        sa.Column("mean", F8),
        sa.Column("median", F8),
        sa.Column("stddev", F8),
        sa.Column("min", F8),
        sa.Column("max", F8),
        sa.Column("ci_low", F8),
        sa.Column("ci_high", F8),
        sa.Column("samples", pg.ARRAY(F8)),
        sa.Column("properties", pg.JSONB, server_default=EMPTY_OBJECT, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_metrics"),
        sa.ForeignKeyConstraint(
            ["result_id"], ["results.id"], name="fk_metrics_result_id_results", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("result_id", "name", name="uq_metrics_result_id_name"),
        sa.CheckConstraint(
            "direction IN ('lower', 'higher')", name=op.f("ck_metrics_direction_known")
        ),
        sa.CheckConstraint("n >= 0", name=op.f("ck_metrics_n_non_negative")),
        sa.CheckConstraint(
            "stddev IS NULL OR stddev >= 0", name=op.f("ck_metrics_stddev_non_negative")
        ),
        sa.CheckConstraint(
            "min IS NULL OR max IS NULL OR min <= max", name=op.f("ck_metrics_min_le_max")
        ),
        sa.CheckConstraint(
            "samples IS NULL OR cardinality(samples) = n", name=op.f("ck_metrics_samples_match_n")
        ),
    )
    op.create_index("ix_metrics_name", "metrics", ["name"])

    op.create_table(
        "device_samples",
        sa.Column("run_id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("result_id", sa.BigInteger),
        sa.Column("time", TZ, nullable=False),
        sa.Column("gpu_index", sa.SmallInteger),
        sa.Column("gpu_util_pct", F8),
        sa.Column("gpu_mem_mib", F8),
        sa.Column("power_w", F8),
        sa.Column("sm_clock_mhz", F8),
        sa.Column("temperature_c", F8),
        sa.Column("throttle_reasons", sa.BigInteger),
        sa.Column("cpu_util_pct", F8),
        sa.Column("rss_mib", F8),
        sa.CheckConstraint(
            "gpu_index IS NULL OR gpu_index >= 0",
            name=op.f("ck_device_samples_gpu_index_non_negative"),
        ),
    )
    op.create_index("ix_device_samples_result_id_time", "device_samples", ["result_id", "time"])
    op.create_index(
        "ix_device_samples_time_brin", "device_samples", ["time"], postgresql_using="brin"
    )
    # Referential integrity of device_samples, enforced per statement instead of per row:
    # row-level foreign keys cut COPY from ~1.4M to ~90k rows/s (perf/ingest.py). One
    # check over the statement's transition table, and set-wise cascades on delete.
    for statement in DEVICE_SAMPLE_TRIGGERS:
        op.execute(statement)

    op.create_table(
        "regressions",
        _id(),
        sa.Column("case_id", sa.BigInteger, nullable=False),
        sa.Column("metric", sa.Text, nullable=False),
        sa.Column("machine_id", sa.BigInteger, nullable=False),
        sa.Column("branch", sa.Text),
        sa.Column("profile", sa.Text, nullable=False),
        sa.Column("commit_id", sa.BigInteger, nullable=False),
        sa.Column("baseline_commit_id", sa.BigInteger),
        sa.Column("baseline", F8, nullable=False),
        sa.Column("value", F8, nullable=False),
        sa.Column("change_pct", F8, nullable=False),
        sa.Column("p_value", F8),
        sa.Column("method", sa.Text, nullable=False),
        sa.Column("detected_at", TZ, server_default=sa.text("now()"), nullable=False),
        sa.Column("state", sa.Text, server_default=sa.text("'open'"), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_regressions"),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name="fk_regressions_case_id_cases"),
        sa.ForeignKeyConstraint(
            ["machine_id"], ["machines.id"], name="fk_regressions_machine_id_machines"
        ),
        sa.ForeignKeyConstraint(
            ["commit_id"], ["commits.id"], name="fk_regressions_commit_id_commits"
        ),
        sa.ForeignKeyConstraint(
            ["baseline_commit_id"],
            ["commits.id"],
            name="fk_regressions_baseline_commit_id_commits",
        ),
        sa.UniqueConstraint(
            "case_id",
            "metric",
            "machine_id",
            "branch",
            "profile",
            "commit_id",
            name="uq_regressions_series_commit",
            postgresql_nulls_not_distinct=True,
        ),
        sa.CheckConstraint(
            "state IN ('open', 'acknowledged', 'fixed')", name=op.f("ck_regressions_state_known")
        ),
        sa.CheckConstraint(
            "profile IN ('smoke', 'full')", name=op.f("ck_regressions_profile_known")
        ),
        sa.CheckConstraint(
            "p_value IS NULL OR (p_value >= 0 AND p_value <= 1)",
            name=op.f("ck_regressions_p_value_range"),
        ),
    )
    op.create_index("ix_regressions_state_detected_at", "regressions", ["state", "detected_at"])


def downgrade() -> None:
    op.execute("DROP TRIGGER device_samples_delete_with_runs ON runs")
    op.execute("DROP TRIGGER device_samples_delete_with_results ON results")
    for function in (
        "device_samples_delete_with_runs",
        "device_samples_delete_with_results",
        "device_samples_check_refs",
    ):
        op.execute(f"DROP FUNCTION {function}() CASCADE")
    for table in (
        "regressions",
        "device_samples",
        "metrics",
        "results",
        "cases",
        "runs",
        "commits",
        "machines",
    ):
        op.drop_table(table)
