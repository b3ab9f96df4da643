"""The background host: one process per machine that runs the gateway's periodic jobs.

- `jobs.py` — what a job is (name, scope, interval, run_once) and the list of jobs.
- `host.py` — the process (`python -m heliograph.background`): holds the machine lock,
  runs each job on its own thread, takes a deployment lock for deployment-scoped jobs.
- `locks.py` — the machine lock (flock in the journal folder) and the deployment locks
  (PostgreSQL advisory lock, or Redis with expiry and renewal).
- `supervisor.py` — the worker's side: starts the host whenever its lock is free (so a
  killed host is back within a second) and makes workers exit with the serve master.

A new job is one module with a class like `journal_writer.JournalWriterJob` and one line
in `jobs.JOBS`.
"""
