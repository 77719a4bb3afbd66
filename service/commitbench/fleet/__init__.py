"""The fleet: many runners working through one PostgreSQL job queue.

`commitbench enqueue` records jobs (queue.py), `commitbench worker` claims and runs them
(worker.py) with the same Runner as `commitbench run`, `commitbench jobs` shows the
queue. The database is the only coordinator: claims use FOR UPDATE SKIP LOCKED, leases
and heartbeats live in the jobs table, and store.py says how results stay exactly-once.

Grafana panel "Job queue" (table, or bar gauge on `jobs`; durations in seconds, unit
"s"; the read-only role of `db create-readonly-role` can select from jobs):

    SELECT state,
           count(*) AS jobs,
           extract(epoch FROM max(now() - created_at) FILTER (WHERE state = 'pending'))
               AS oldest_pending_s,
           extract(epoch FROM max(now() - started_at) FILTER (WHERE state = 'running'))
               AS longest_running_s,
           count(*) FILTER (WHERE state = 'running' AND lease_expires_at < now())
               AS expired_leases
    FROM jobs
    GROUP BY state
    ORDER BY array_position(ARRAY['pending', 'running', 'done', 'failed', 'parked'], state)

and its companion table "Running jobs" (runner and age of each):

    SELECT id, lease_owner AS runner, left(sha, 12) AS commit, branch, attempts,
           extract(epoch FROM now() - started_at) AS age_s,
           extract(epoch FROM now() - heartbeat_at) AS since_heartbeat_s
    FROM jobs WHERE state = 'running' ORDER BY started_at
"""

from __future__ import annotations

from commitbench.fleet.kinds import MachineKind
from commitbench.fleet.queue import ClaimedJob, JobSpec, LeaseLost
from commitbench.fleet.worker import FleetOptions, FleetWorker

__all__ = ["ClaimedJob", "FleetOptions", "FleetWorker", "JobSpec", "LeaseLost", "MachineKind"]
