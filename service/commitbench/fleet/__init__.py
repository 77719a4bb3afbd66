"""The fleet: many runners working through one PostgreSQL job queue.

`commitbench enqueue` records jobs (queue.py), `commitbench worker` claims and runs them
(worker.py) with the same Runner as `commitbench run`, `commitbench jobs` shows the
queue. The database is the only coordinator: claims use FOR UPDATE SKIP LOCKED, leases
and heartbeats live in the jobs table, and store.py says how results stay exactly-once.

Grafana panel "Job queue" (table or bar gauge; the read-only role can select jobs):

    SELECT state,
           count(*) AS jobs,
           max(now() - created_at) FILTER (WHERE state = 'pending') AS oldest_pending,
           max(now() - started_at) FILTER (WHERE state = 'running') AS longest_running,
           count(*) FILTER (WHERE state = 'running' AND lease_expires_at < now())
               AS expired_leases
    FROM jobs
    GROUP BY state
    ORDER BY array_position(ARRAY['pending','running','done','failed','parked'], state)

and its companion table "Running jobs":

    SELECT id, lease_owner AS runner, left(sha, 12) AS commit, branch, attempts,
           now() - started_at AS age, now() - heartbeat_at AS since_heartbeat
    FROM jobs WHERE state = 'running' ORDER BY started_at
"""

from __future__ import annotations

from commitbench.fleet.queue import ClaimedJob, JobSpec, LeaseLost, MachineKind
from commitbench.fleet.worker import FleetOptions, FleetWorker

__all__ = ["ClaimedJob", "FleetOptions", "FleetWorker", "JobSpec", "LeaseLost", "MachineKind"]
