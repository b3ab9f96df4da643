"""A deployment-scoped job for the tests: each run appends its host's pid to a file, so
the file tells which host held the job, and when."""

import os


class HolderJob:
    name = os.environ.get("HOLDER_JOB_NAME", "test-holder")
    scope = "deployment"
    interval_s = 0.05
    runs_at_exit = False

    def __init__(self, ctx):
        self.path = os.environ["HOLDER_FILE"]

    def run_once(self) -> bool:
        with open(self.path, "a") as fh:
            fh.write(f"{os.getpid()}\n")
        return True

    def close(self) -> None:
        pass
