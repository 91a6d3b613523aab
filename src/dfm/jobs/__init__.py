"""Long work out of the request path: job records (spec.py), their folders on disk (store.py) and a local
runner with a bounded number of worker threads (local.py). Imports pipelines, never app."""

from dfm.jobs.local import JobContext, LocalRunner
from dfm.jobs.spec import TERMINAL_STATES, JobSpec, JobState, JobStatus
from dfm.jobs.store import JobStore

__all__ = ["JobContext", "JobSpec", "JobState", "JobStatus", "JobStore", "LocalRunner", "TERMINAL_STATES"]
