"""The serve master of `heliograph serve --workers N` is a Python started without `site`
that imports only os, signal, sys and time (issue 15, session 16: ~14.5 → ~10 MB RSS);
its workers are forked and run `site` themselves (heliograph/worker.py), each a full
interpreter. Everything the master does for its workers is unchanged: they serve the
socket it bound, a worker that dies is replaced (the log names how it ended), SIGHUP
replaces every worker, SIGTTIN/SIGTTOU add and remove one, SIGTERM stops them all and
removes the folder it was given (the metrics files).

What the master has loaded is read from outside, in /proc/<pid>/maps: an extension module
of the standard library (socket's, argparse's imports, anything a site-packages `.pth`
loads) or of site-packages is a shared library of its own, mapped when imported."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import openai
from servers import ADMIN_KEY, Gateway, wait
from test_worker_imports import children


def extension_modules(pid: int) -> set[str]:
    """The Python extension modules (and site-packages libraries) mapped into pid."""
    found = set()
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        path = line.split(maxsplit=5)[5] if len(line.split(maxsplit=5)) > 5 else ""
        if "lib-dynload" in path or "site-packages" in path or "dist-packages" in path:
            found.add(path)
    return found


def remove_at_exit(pid: int) -> list[str]:
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    return [argv[i + 1] for i, arg in enumerate(argv) if arg == "--remove-at-exit"]


def test_the_master_loads_no_extension_module_and_keeps_its_workers(upstream, tmp_path):
    gw = Gateway(tmp_path, upstream.url, f"sqlite:///{tmp_path / 'gw.db'}", workers=2)
    try:
        client = openai.OpenAI(base_url=gw.url + "/v1", api_key=ADMIN_KEY, max_retries=0)

        def served(times: int = 4) -> None:
            for _ in range(times):  # whichever worker answers
                reply = client.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": "hello"}])
                assert reply.choices[0].message.content.startswith("Echo: ")

        master = gw.proc.pid
        served()
        workers = wait(lambda: (found := children(master)) and len(found) == 2 and found,
                       what="two workers")
        assert extension_modules(master) == set(), extension_modules(master)
        assert all(extension_modules(pid) for pid in workers)  # full interpreters
        folders = remove_at_exit(master)
        assert folders and all(Path(folder).is_dir() for folder in folders)

        # A worker that dies is replaced; the log says how it ended.
        os.kill(workers[0], signal.SIGKILL)
        now = wait(lambda: (found := set(children(master))) and len(found) == 2
                   and workers[0] not in found and found, what="a replacement worker")
        (replacement,) = now - {workers[1]}
        assert (f"heliograph: worker {workers[0]} was killed by SIGKILL; started worker "
                f"{replacement}") in gw.log_text()
        served()

        os.kill(master, signal.SIGTTIN)  # one more
        wait(lambda: len(children(master)) == 3, what="a third worker")
        served()
        os.kill(master, signal.SIGTTOU)  # one fewer
        wait(lambda: len(children(master)) == 2, what="two workers again")
        before = set(children(master))

        os.kill(master, signal.SIGHUP)  # a new generation
        wait(lambda: (found := set(children(master))) and len(found) == 2
             and not found & before, what="every worker replaced")
        served()
        assert extension_modules(master) == set()

        os.kill(master, signal.SIGTERM)
        assert gw.proc.wait(20) == 0
        assert not any(Path(folder).exists() for folder in folders)
    finally:
        gw.stop()
