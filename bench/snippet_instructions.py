#!/usr/bin/env python3
"""Instructions per run of a Python statement, counted by valgrind (callgrind): exact and
load-free, for pricing one step of a hot path (a slice, a parse, one method) before
building on it.

    python bench/snippet_instructions.py [--runs 1000] SETUP STATEMENT [STATEMENT ...]

SETUP runs once (bench/ is on sys.path, so `from sse_body import SSE_BODY` works); each
STATEMENT (several lines allowed) runs --runs times in a loop inside a function, after a
few warm-up runs (CPython specialises its bytecode after a few). Printed per STATEMENT:
(instructions with --runs runs − with none) / --runs. The loop itself is ~0.1 k. Each
measurement starts a new interpreter under valgrind (a few seconds). Needs valgrind.

    python bench/snippet_instructions.py 'from sse_body import SSE_BODY; b = SSE_BODY.encode()' \\
        'b.split(b"\\n\\ndata: ")' 'b.find(b"[DONE]")'
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

CHILD = """
import sys
sys.path.insert(0, {bench!r})
runs, setup, statement = int(sys.argv[1]), sys.argv[2], sys.argv[3]
scope = {{}}
exec(setup, scope)
body = "\\n".join("        " + line for line in statement.splitlines())
exec("def _loop(_runs):\\n    for _ in range(_runs):\\n" + body + "\\n", scope)
scope["_loop"](3)
scope["_loop"](runs)
"""


def count(runs: int, setup: str, statement: str) -> int:
    with tempfile.TemporaryDirectory(prefix="heliograph-snippet-") as tmp:
        out = Path(tmp) / "callgrind.out"
        # sys.executable itself, not a launcher script (valgrind would count the launcher).
        subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                        os.path.realpath(sys.executable), "-c", CHILD.format(bench=str(HERE)),
                        str(runs), setup, statement], check=True, capture_output=True)
        return next(int(line.split()[1]) for line in out.read_text().splitlines()
                    if line.startswith(("summary:", "totals:")))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("setup")
    ap.add_argument("statements", nargs="+")
    args = ap.parse_args()
    for statement in args.statements:
        per = (count(args.runs, args.setup, statement) - count(0, args.setup, statement)) \
            / args.runs
        print(f"{per / 1000:8.2f} k  {statement}", flush=True)


if __name__ == "__main__":
    main()
