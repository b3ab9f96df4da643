#!/usr/bin/env python3
"""Gateway overhead benchmark: nginx as a fixed-response fake upstream, wrk as the load.

    python bench/run.py [--duration 10] [--workers 1 2] [--connections 32]

For every scenario it measures, directly against nginx, through `heliograph serve`
(N workers, request logging on) and through bench/bare_proxy.py, a bare Python
pass-through with the same N workers (the same-run yardstick; --no-bare skips it):

* throughput (req/s) and p50/p99 latency at --connections connections (wrk -t2),
* p50/p99 latency at one connection (wrk -t1 -c1),
* added p50 = proxy p50 @1 - direct p50 @1,
* peak RSS (VmHWM) of every worker process,
* whether every request was logged (the gateway's GET /api/v1/metrics total.requests,
  the reference's GET /count, vs. the number of requests wrk completed plus the warm-up).

Prints a markdown table and writes bench/results/latest.json. See bench/README.md.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from backlog import BacklogSampler
from proctree import TreeCpu, tree_memory
from sse_body import SSE_BODY, nginx_parts, nginx_sets

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

ADMIN_KEY = "sk-hg-bench-key"
UPSTREAM_KEY = "sk-bench"
WARMUP_REQUESTS = 300
BENCH_MARK = "BENCH_JSON "
NOISY_CORES = 0.15

# ----------------------------------------------------------------------------- scenarios


@dataclass(frozen=True)
class Scenario:
    """One request shape. `headers` are sent to the gateway only (never to nginx directly,
    e.g. Helicone-style cache headers); Authorization is added per target."""

    name: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""


CHAT_BODY = '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello"}]}'
STREAM_BODY = ('{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello"}],'
               '"stream":true}')

SCENARIOS: list[Scenario] = [
    Scenario("chat", "/v1/chat/completions", {"Content-Type": "application/json"}, CHAT_BODY),
    # The cache-hit path: the warm-up fills the cache, every measured request is a hit
    # answered without the upstream (issue: a hit should cost less than a miss's overhead).
    Scenario("chat-cache-hit", "/v1/chat/completions",
             {"Content-Type": "application/json", "Helicone-Cache-Enabled": "true"},
             CHAT_BODY),
    # Every request counted against a gateway-side rate limit that never refuses: a
    # write to the shared state (on SQLite, the log's database file) per request.
    Scenario("chat-ratelimit", "/v1/chat/completions",
             {"Content-Type": "application/json",
              "Helicone-RateLimit-Policy": "100000000;w=60"}, CHAT_BODY),
    # A streamed answer (bench/sse_body.py: 22 events, 6.6 KB). nginx streams when asked
    # for text/event-stream, as the gateway asks; the caller does not ask for usage, so
    # the gateway adds stream_options.include_usage and hides the usage chunk again.
    Scenario("chat-stream", "/v1/chat/completions",
             {"Content-Type": "application/json", "Accept": "text/event-stream"},
             STREAM_BODY),
]

# A realistic OpenAI chat.completion response. nginx `return` interpolates `$` and
# understands `\` escapes, and the body sits in a single-quoted string: keep it free of
# all three.
UPSTREAM_BODY = json.dumps({
    "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
    "object": "chat.completion",
    "created": 1741569952,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [{
        "index": 0,
        "message": {
            "role": "assistant",
            "content": "Hello! How can I assist you today? If you have any questions or need "
                       "help with something, feel free to ask.",
            "refusal": None,
            "annotations": [],
        },
        "logprobs": None,
        "finish_reason": "stop",
    }],
    "usage": {
        "prompt_tokens": 8,
        "completion_tokens": 27,
        "total_tokens": 35,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                      "accepted_prediction_tokens": 0,
                                      "rejected_prediction_tokens": 0},
    },
    "service_tier": "default",
    "system_fingerprint": "fp_06737a9306",
}, separators=(",", ":"))
assert not set("'$\\") & set(UPSTREAM_BODY)

UPSTREAM_HEADERS = {
    "x-request-id": "req_bench0000000000000000000000",
    "openai-processing-ms": "312",
    "x-ratelimit-limit-requests": "30000",
    "x-ratelimit-remaining-requests": "29999",
    "x-ratelimit-reset-requests": "2ms",
    "x-ratelimit-limit-tokens": "150000000",
    "x-ratelimit-remaining-tokens": "149999990",
    "x-ratelimit-reset-tokens": "0s",
}

# ----------------------------------------------------------------------------- processes


AUTOGROUP_NICE = 0  # set from --autogroup-nice


def raise_session(pid: int) -> None:
    """Give pid's session AUTOGROUP_NICE. Linux shares CPU between sessions (autogroups)
    first and only then between their processes, so on a shared machine a negative value
    keeps other sessions' load from deciding latencies (root only; 0: leave alone)."""
    if AUTOGROUP_NICE:
        Path(f"/proc/{pid}/autogroup").write_text(str(AUTOGROUP_NICE))


class Procs:
    """Every child we start, stopped (TERM, then KILL) on exit, error or Ctrl-C."""

    def __init__(self):
        self.procs: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, argv: list[str], **kw) -> subprocess.Popen:
        # Own process group, so a Ctrl-C in the terminal reaches only us and we stop
        # the children in order (the gateway's workers die with their supervisor's group).
        proc = subprocess.Popen(argv, start_new_session=True, **kw)
        self.procs.append((name, proc))
        raise_session(proc.pid)
        return proc

    def stop(self, proc: subprocess.Popen, timeout: float = 15) -> None:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        # Anything left in its group (e.g. orphaned uvicorn workers) goes too.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if proc.poll() is None:
            proc.wait(5)
        self.procs = [(n, p) for n, p in self.procs if p is not proc]

    def stop_all(self) -> None:
        for _, proc in reversed(list(self.procs)):
            try:
                self.stop(proc)
            except Exception as exc:  # keep cleaning up
                print(f"warning: could not stop pid {proc.pid}: {exc}", file=sys.stderr)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(port: int, path: str, proc: subprocess.Popen, what: str, log: Path,
              timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}; log:\n"
                               f"{log.read_text(errors='replace')[-4000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            conn.getresponse().read()
            conn.close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not answer on port {port} within {timeout}s; log:\n"
                       f"{log.read_text(errors='replace')[-4000:]}")


# ----------------------------------------------------------------------------- nginx


def nginx_conf(tmp: Path, port: int) -> str:
    headers = "\n".join(f"            add_header {k} {v} always;"
                        for k, v in UPSTREAM_HEADERS.items())
    user = "user root;\n" if os.geteuid() == 0 else ""
    return f"""{user}worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    server_tokens off;
    server {{
        listen 127.0.0.1:{port} reuseport backlog=4096;
        location = /v1/chat/completions {{
            if ($http_accept = "text/event-stream") {{
                rewrite ^ /v1/chat/completions-stream last;
            }}
            default_type application/json;
{headers}
            return 200 '{UPSTREAM_BODY}';
        }}
        location = /v1/chat/completions-stream {{
            internal;
            default_type text/event-stream;
{headers}
{nginx_sets("sse", SSE_BODY)}
            return 200 '{"".join(f"$sse{i}" for i in range(nginx_parts(SSE_BODY)))}';
        }}
        location / {{ return 404; }}
    }}
}}
"""


def one_worker(tmp: Path, upstream: int, port: int, bare: bool, env: dict[str, str]
               ) -> tuple[list[str], dict[str, str], str]:
    """The argv, environment (env plus what the server needs) and Authorization value of
    one worker of the gateway (SQLite in tmp), or of the bare pass-through, in front of
    the nginx upstream on port `upstream` (instructions.py, bytecodes.py)."""
    if bare:
        return ([sys.executable, str(HERE / "bare_proxy.py"), "--port", str(port),
                 "--workers", "1"],
                dict(env, BARE_UPSTREAM=f"http://127.0.0.1:{upstream}",
                     BARE_DB=str(tmp / "bare.db")),
                f"Bearer {UPSTREAM_KEY}")
    config = tmp / "heliograph.toml"
    config.write_text(f'[providers.openai]\nbase_url = "http://127.0.0.1:{upstream}/v1"'
                      f'\n[storage]\ndatabase_url = "sqlite:///{tmp}/bench.db"\n')
    return ([sys.executable, "-m", "heliograph", "serve", "--config", str(config),
             "--port", str(port), "--workers", "1"],
            dict(env, OPENAI_API_KEY=UPSTREAM_KEY, HELIOGRAPH_ADMIN_KEY=ADMIN_KEY),
            f"Bearer {ADMIN_KEY}")


def start_nginx(procs: Procs, tmp: Path) -> int:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    port = free_port()
    conf = tmp / "nginx.conf"
    conf.write_text(nginx_conf(tmp, port))
    log = tmp / "nginx-stderr.log"
    argv = [nginx, "-p", str(tmp), "-c", str(conf), "-g", "daemon off;"]
    if subprocess.run([nginx, "-h"], capture_output=True, text=True).stderr.find("-e ") >= 0:
        argv[1:1] = ["-e", str(tmp / "nginx-error.log")]
    with open(log, "wb") as fh:
        proc = procs.start("nginx", argv, stdout=fh, stderr=subprocess.STDOUT, cwd=tmp)
    wait_http(port, "/", proc, "nginx", log)
    return port


# ----------------------------------------------------------------------------- proxies


@dataclass
class Server:
    """A proxy under test (the gateway or the bare reference), served by uvicorn."""

    proc: subprocess.Popen
    port: int
    tmp: Path
    workers: int
    logged: Callable[[], int]  # requests it has logged so far
    journal: Path | None = None  # the gateway's journal folder (the bare proxy has none)


def spawn_server(procs: Procs, name: str, argv: list[str], port: int, tmp: Path,
                 workers: int, env: dict[str, str], logged: Callable[[int], int],
                 journal: Path | None = None) -> Server:
    """Start a proxy (output to <tmp>/<name>.log) and wait for its /healthz."""
    log = tmp / f"{name}.log"
    with open(log, "wb") as fh:
        proc = procs.start(name, argv, stdout=fh, stderr=subprocess.STDOUT, cwd=tmp, env=env)
    wait_http(port, "/healthz", proc, name, log, timeout=60)
    return Server(proc, port, tmp, workers, lambda: logged(port), journal)


def start_gateway(procs: Procs, tmp: Path, upstream_port: int, workers: int) -> Server:
    tmp.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = tmp / "heliograph.toml"
    config.write_text(
        "[providers.openai]\n"
        f'base_url = "http://127.0.0.1:{upstream_port}/v1"\n\n'
        "[storage]\n"
        f'database_url = "sqlite:///{tmp}/bench.db"\n')
    env = dict(os.environ, OPENAI_API_KEY=UPSTREAM_KEY, HELIOGRAPH_ADMIN_KEY=ADMIN_KEY)
    for var in ("HELIOGRAPH_CONFIG", "HELIOGRAPH_DATABASE_URL", "HELIOGRAPH_REDIS_URL",
                "HELIOGRAPH_JOURNAL_DIR"):
        env.pop(var, None)
    exe = shutil.which("heliograph") or str(Path(sys.executable).parent / "heliograph")
    argv = [exe, "serve", "--config", str(config), "--port", str(port),
            "--workers", str(workers)]
    # The journal beside the database (config.resolved_journal_dir's default).
    return spawn_server(procs, f"gateway-{workers}w", argv, port, tmp, workers, env,
                        logged_requests, journal=tmp / "bench.db.journal")


def start_bare(procs: Procs, tmp: Path, upstream_port: int, workers: int) -> Server:
    """bench/bare_proxy.py forwarding to nginx, logging into a fresh SQLite file."""
    tmp.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = dict(os.environ, BARE_UPSTREAM=f"http://127.0.0.1:{upstream_port}",
               BARE_DB=str(tmp / "bare.db"))
    argv = [sys.executable, str(HERE / "bare_proxy.py"), "--port", str(port),
            "--workers", str(workers)]
    return spawn_server(procs, f"bare-{workers}w", argv, port, tmp, workers, env,
                        bare_logged)


def worker_pids(srv: Server) -> list[int]:
    """The uvicorn worker processes: the server process itself with one worker, else its
    multiprocessing-spawned children (not the resource tracker)."""
    if srv.workers == 1:
        return [srv.proc.pid]
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])
            if ppid != srv.proc.pid:
                continue
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError):
            continue
        if "resource_tracker" not in cmdline:
            pids.append(int(entry.name))
    return sorted(pids)


def proc_status(pid: int, field_name: str) -> int | None:
    """A `kB` field of /proc/<pid>/status, in kB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def http_get(port: int, path: str, headers: dict[str, str] | None = None) -> bytes:
    """GET a 200 body, else raise."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"GET {path} -> {resp.status}: {data[:500]!r}")
        return data
    finally:
        conn.close()


def logged_requests(port: int) -> int:
    data = http_get(port, "/api/v1/metrics?group_by=model",
                    {"Authorization": f"Bearer {ADMIN_KEY}"})
    return int(json.loads(data)["total"]["requests"])


def bare_logged(port: int) -> int:
    return int(http_get(port, "/count"))


def wait_logged(logged: Callable[[], int], expected: int, stable_s: float = 2.0,
                timeout: float = 60) -> int:
    """Poll until the count stops growing (and has reached `expected`, or timeout)."""
    deadline = time.monotonic() + timeout
    last, since = -1, time.monotonic()
    while True:
        count = logged()
        now = time.monotonic()
        if count != last:
            last, since = count, now
        elif now - since >= stable_s and (count >= expected or now >= deadline):
            return count
        if now >= deadline and now - since >= stable_s:
            return count
        time.sleep(0.25)


# ----------------------------------------------------------------------------- load


def lua_str(s: str) -> str:
    return '"' + "".join(
        {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r"}.get(c, c) for c in s) + '"'


LUA_DONE = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '%s{"requests":%d,"duration_us":%d,"bytes":%d,"connect_errors":%d,"read_errors":%d,' ..
    '"write_errors":%d,"timeouts":%d,"non2xx":%d,"mean_us":%.1f,"max_us":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d}\n',
    MARK, summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
    e.timeout, e.status, latency.mean, latency.max, latency:percentile(50),
    latency:percentile(90), latency:percentile(99), latency:percentile(99.9)))
end
"""


def write_lua(tmp: Path, name: str, scenario: Scenario, headers: dict[str, str]) -> Path:
    lines = ['wrk.method = "POST"', f"wrk.path = {lua_str(scenario.path)}",
             f"wrk.body = {lua_str(scenario.body)}", f"MARK = {lua_str(BENCH_MARK)}"]
    lines += [f"wrk.headers[{lua_str(k)}] = {lua_str(v)}" for k, v in headers.items()]
    path = tmp / f"{name}.lua"
    path.write_text("\n".join(lines) + "\n" + LUA_DONE)
    return path


CLK_TCK = os.sysconf("SC_CLK_TCK")


def _busy_jiffies() -> int:
    """All CPUs' non-idle time since boot (/proc/stat)."""
    with open("/proc/stat") as fh:
        values = [int(v) for v in fh.readline().split()[1:]]
    return values[0] + values[1] + values[2]  # user, nice, system (not irq/softirq)


def _tree_jiffies() -> int:
    """CPU used by this process and everything it started (live and reaped)."""
    stats: dict[int, tuple[int, int]] = {}  # pid -> (ppid, jiffies)
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as fh:
                raw = fh.read()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2:].split()
        # utime stime cutime cstime are fields 14-17 (1-based), i.e. 11-14 after "state".
        stats[int(entry.name)] = (int(fields[1]), sum(int(x) for x in fields[11:15]))
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    total, todo = 0, [os.getpid()]
    while todo:
        pid = todo.pop()
        total += stats.get(pid, (0, 0))[1]
        todo.extend(children.get(pid, ()))
    return total


def other_cpu(seconds: float) -> float:
    """Cores used by processes not ours over the next `seconds`."""
    busy0, tree0, t0 = _busy_jiffies(), _tree_jiffies(), time.monotonic()
    time.sleep(seconds)
    busy1, tree1, t1 = _busy_jiffies(), _tree_jiffies(), time.monotonic()
    return max(0.0, ((busy1 - busy0) - (tree1 - tree0)) / CLK_TCK / (t1 - t0))


WAIT_QUIET = 0.0  # set from --wait-quiet


def wait_quiet() -> None:
    """On a shared machine, wait (up to WAIT_QUIET s) until others leave the CPUs alone."""
    if WAIT_QUIET <= 0:
        return
    deadline = time.monotonic() + WAIT_QUIET
    while (load := other_cpu(1.0)) > NOISY_CORES:
        if time.monotonic() >= deadline:
            print(f"warning: machine still busy ({load:.2f} other cores); measuring anyway",
                  file=sys.stderr)
            return
        print(f"waiting for a quiet machine ({load:.2f} other cores busy) ...",
              file=sys.stderr)


def run_wrk(port: int, script: Path, threads: int, connections: int, duration: int) -> dict:
    wrk = shutil.which("wrk") or "/usr/bin/wrk"
    argv = [wrk, f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--timeout", "5s",
            "--latency", "-s", str(script), f"http://127.0.0.1:{port}"]
    wait_quiet()
    busy0, tree0, t0 = _busy_jiffies(), _tree_jiffies(), time.monotonic()
    # A session of its own, like the servers', so --autogroup-nice can raise it alone.
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    raise_session(proc.pid)
    try:
        stdout, stderr = proc.communicate(timeout=duration + 60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise
    out = subprocess.CompletedProcess(argv, proc.returncode, stdout, stderr)
    busy1, tree1, t1 = _busy_jiffies(), _tree_jiffies(), time.monotonic()
    # CPU that processes other than ours used meanwhile (in cores): the machine is shared,
    # and anything above ~0.1 makes the numbers suspect.
    other_cores = max(0.0, ((busy1 - busy0) - (tree1 - tree0)) / CLK_TCK / (t1 - t0))
    if out.returncode != 0:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stderr}\n{out.stdout}")
    for line in out.stdout.splitlines():
        if line.startswith(BENCH_MARK):
            res = json.loads(line[len(BENCH_MARK):])
            break
    else:
        raise RuntimeError(f"no {BENCH_MARK.strip()} line in wrk output:\n{out.stdout}")
    res["rps"] = res["requests"] / (res["duration_us"] / 1e6)
    res["errors"] = sum(res[k] for k in ("connect_errors", "read_errors", "write_errors",
                                         "timeouts"))
    res["threads"], res["connections"] = threads, connections
    res["other_cpu_cores"] = round(other_cores, 3)
    if other_cores > NOISY_CORES:
        print(f"warning: other processes used {other_cores:.2f} cores during the "
              f"{connections}-connection run on :{port}; numbers are suspect",
              file=sys.stderr)
    return res


def warm_up(port: int, scenario: Scenario, headers: dict[str, str], n: int) -> int:
    """n keep-alive requests; returns how many got a 2xx (all must)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    ok = 0
    body = scenario.body.encode()
    for _ in range(n):
        conn.request("POST", scenario.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        if 200 <= resp.status < 300:
            ok += 1
        elif ok == 0:
            raise RuntimeError(f"warm-up POST {scenario.path} -> {resp.status}: {data[:800]!r}")
    conn.close()
    return ok


IDLE_LEAVES = {"_worker", "Condition.wait", "Event.wait", "Thread._wait_for_tstate_lock",
               "Queue.get", "BaseSelector.select", "EpollSelector.select", "select"}


def profile(pid: int, port: int, script: Path, args, out_dir: Path, label: str) -> dict:
    """An extra wrk run at --connections under `py-spy record` of one worker; returns the
    wrk result and the top functions by own (leaf) time. Kept apart from the measured runs
    because sampling slows the target."""
    pyspy = shutil.which("py-spy")
    if not pyspy:
        raise RuntimeError("--profile needs py-spy (pip install py-spy)")
    raw = out_dir / f"profile-{label}.txt"
    rec = subprocess.Popen([pyspy, "record", "--pid", str(pid), "--format", "raw",
                            "--nolineno", "--rate", "250", "-o", str(raw),
                            "--duration", str(args.duration)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)  # let py-spy attach
        res = run_wrk(port, script, min(2, args.connections), args.connections, args.duration)
        _, err = rec.communicate(timeout=args.duration + 30)
    finally:
        if rec.poll() is None:
            rec.kill()
            rec.wait()
    if not raw.exists():
        raise RuntimeError(f"py-spy wrote no profile: {err}")
    own: dict[str, int] = {}
    total_own: dict[str, int] = {}
    samples = idle = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        leaf = frames[-1]
        # py-spy's idle detection misses threads blocked in C (an idle thread pool sits
        # in `_worker` waiting on its queue): drop those samples by their leaf.
        if leaf.split(" (")[0] in IDLE_LEAVES:
            idle += n
            continue
        samples += n
        own[leaf] = own.get(leaf, 0) + n
        for frame in set(frames):
            total_own[frame] = total_own.get(frame, 0) + n
    top = sorted(own.items(), key=lambda kv: -kv[1])[:args.profile_top]
    samples = max(samples, 1)
    return {"wrk": res, "samples": samples, "idle_samples_dropped": idle, "raw": str(raw),
            "top_own": [{"function": f, "own_pct": 100 * n / samples,
                         "total_pct": 100 * total_own[f] / samples} for f, n in top]}


def measure(port: int, script: Path, args, root_pid: int | None = None,
            journal: Path | None = None) -> dict:
    """The two wrk runs; with root_pid, also the CPU time its process tree used per
    request during each run (ms); with journal, the journal's backlog during the run at
    full load (see backlog.py)."""
    out = {}
    for key, threads, connections in (("c_many", min(2, args.connections), args.connections),
                                      ("c1", 1, 1)):
        cpu = TreeCpu(root_pid) if root_pid else None
        if cpu is not None:
            cpu.start()
        sampler = BacklogSampler(journal) if journal and key == "c_many" else None
        if sampler is not None:
            sampler.start()
        res = run_wrk(port, script, threads, connections, args.duration)
        if sampler is not None:
            res.update(sampler.stop())
        if cpu is not None:
            seconds = cpu.stop()
            res["cpu_s"] = round(seconds, 3)
            res["cpu_ms_per_request"] = round(1000 * seconds / max(res["requests"], 1), 4)
            # The same without the background host (the journal writer's inserts).
            res["serving_cpu_ms_per_request"] = round(
                1000 * (seconds - cpu.apart_s) / max(res["requests"], 1), 4)
        out[key] = res
    return out


# ----------------------------------------------------------------------------- main


def fmt_ms(us: float | None) -> str:
    return "-" if us is None else f"{us / 1000:.2f} ms"


def print_table(rows: list[dict], connections: int) -> str:
    head = (f"| scenario | req/s @{connections} | p50 @{connections} | p99 @{connections} "
            f"| p50 @1 | p99 @1 | added p50 @1 | CPU ms/req (w/o writer) @{connections} / @1 "
            f"| peak RSS MB per worker | tree peak RSS / PSS MB "
            f"| journal KB @{connections}: max / 2nd-half mean / end, drained in "
            f"| logged/sent | non-2xx/errors "
            f"| other CPU |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        many, one = r["c_many"], r["c1"]
        rss = r.get("peak_rss_mb")
        rss_s = "-" if not rss else " / ".join(f"{x:.0f}" for x in rss)
        log = r.get("logging")
        if log:
            mark = "ok" if log["match"] else "MISMATCH"
            log_s = f"{log['logged']} / {log['sent']} ({mark})"
        else:
            log_s = "-"
        bad = f"{many['non2xx'] + one['non2xx']}/{many['errors'] + one['errors']}"
        added = r.get("added_p50_us")
        cpu = [x.get(k) for x in (many, one)
               for k in ("cpu_ms_per_request", "serving_cpu_ms_per_request")]
        cpu_s = "-" if cpu[0] is None else "{:.3f} ({:.3f}) / {:.3f} ({:.3f})".format(*cpu)
        tree = r.get("tree_memory")
        tree_s = "-" if not tree else f"{tree['peak_rss_mb']:.0f} / {tree['pss_mb']:.0f}"
        backlog_s = "-"
        if "backlog_max_kb" in many:
            drained = many["backlog_drained_s"]
            backlog_s = (f"{many['backlog_max_kb']:,.0f} / "
                         f"{many['backlog_second_half_mean_kb']:,.0f} / "
                         f"{many['backlog_end_kb']:,.0f}, "
                         + ("not in 120 s" if drained is None else f"{drained:.1f} s"))
        lines.append(
            f"| {r['label']} | {many['rps']:,.0f} | {fmt_ms(many['p50_us'])} | "
            f"{fmt_ms(many['p99_us'])} | {fmt_ms(one['p50_us'])} | {fmt_ms(one['p99_us'])} | "
            f"{'-' if added is None else fmt_ms(added)} | {cpu_s} | {rss_s} | {tree_s} | "
            f"{backlog_s} | "
            f"{log_s} | {bad} | "
            f"{max(many['other_cpu_cores'], one['other_cpu_cores']):.2f} |")
    table = "\n".join(lines)
    print(table, flush=True)
    return table


def uses_cache(scenario: Scenario) -> bool:
    return any(k.lower() == "helicone-cache-enabled" for k in scenario.headers)


def measure_server(srv: Server, scenario: Scenario, headers: dict[str, str], direct: dict,
                   args, label: str, target: str, profile_label: str | None = None) -> dict:
    """Warm-up, the measured wrk runs (+ an optional py-spy run), then the checks that
    need the runs to be over: every request logged, peak RSS, latency added to direct."""
    script = write_lua(srv.tmp, scenario.name, scenario, headers)
    baseline = srv.logged()
    warm_ok = warm_up(srv.port, scenario, headers, WARMUP_REQUESTS)
    row = {"label": label, "scenario": scenario.name, "target": target,
           "workers": srv.workers,
           **measure(srv.port, script, args, srv.proc.pid, srv.journal)}
    runs = [row["c_many"], row["c1"]]
    if profile_label:
        row["profile"] = profile(worker_pids(srv)[0], srv.port, script, args,
                                 args.output.parent, profile_label)
        runs.append(row["profile"]["wrk"])
    completed = WARMUP_REQUESTS + sum(r["requests"] for r in runs)
    # wrk stops with up to one request in flight per connection; the proxy may
    # (correctly) log those too, so allow that many extra.
    in_flight = sum(r["connections"] for r in runs)
    logged = wait_logged(srv.logged, completed) - baseline
    row["logging"] = {
        "logged": logged, "sent": completed, "warmup": WARMUP_REQUESTS,
        "warmup_2xx": warm_ok, "in_flight_allowance": in_flight,
        "match": completed <= logged <= completed + in_flight,
        "exact": logged == completed,
    }
    pids = worker_pids(srv)
    row["worker_pids"] = pids
    row["peak_rss_mb"] = [(proc_status(p, "VmHWM") or 0) / 1024 for p in pids]
    row["rss_now_mb"] = [(proc_status(p, "VmRSS") or 0) / 1024 for p in pids]
    if srv.workers > 1:
        sup = proc_status(srv.proc.pid, "VmHWM")
        row["supervisor_peak_rss_mb"] = (sup or 0) / 1024
    # The whole tree: serve master, workers, the background host.
    row["tree_memory"] = tree_memory(srv.proc.pid)
    row["added_p50_us"] = row["c1"]["p50_us"] - direct["c1"]["p50_us"]
    row["added_p99_us"] = row["c1"]["p99_us"] - direct["c1"]["p99_us"]
    return row


def bench(args, procs: Procs, tmp: Path) -> dict:
    scenarios = [s for s in SCENARIOS if not args.scenario or s.name in args.scenario]
    if not scenarios:
        raise SystemExit(f"no such scenario; have {[s.name for s in SCENARIOS]}")
    nginx_port = start_nginx(procs, tmp)
    print(f"nginx fake upstream on :{nginx_port}", file=sys.stderr)
    rows = []
    for scenario in scenarios:
        # Direct to nginx: same request, without the gateway's own headers.
        direct_headers = {k: v for k, v in scenario.headers.items()
                          if k.lower() in ("content-type", "accept")}
        direct_headers["Authorization"] = f"Bearer {UPSTREAM_KEY}"
        script = write_lua(tmp, f"{scenario.name}-direct", scenario, direct_headers)
        warm_up(nginx_port, scenario, direct_headers, WARMUP_REQUESTS)
        print(f"[{scenario.name}] direct ...", file=sys.stderr)
        direct = {"label": f"{scenario.name}: direct nginx", "scenario": scenario.name,
                  "target": "direct", **measure(nginx_port, script, args)}
        rows.append(direct)

        # The reference forwards Authorization as is, so it gets what nginx gets directly.
        # It has no cache: on a cache-hit scenario it would only repeat the miss path, so
        # it is skipped there to keep runs short.
        targets = [("gateway", "gateway", start_gateway,
                    dict(scenario.headers, Authorization=f"Bearer {ADMIN_KEY}"))]
        if not (args.no_bare or uses_cache(scenario)):
            targets.append(("bare", "bare aiohttp proxy", start_bare, direct_headers))
        for target, name, start, headers in targets:
            for workers in args.workers:
                print(f"[{scenario.name}] {name}, {workers} worker(s) ...", file=sys.stderr)
                server = start(procs, tmp / f"{target}-{scenario.name}-{workers}",
                               nginx_port, workers)
                profile_label = (f"{scenario.name}-{workers}w"
                                 if args.profile and target == "gateway" else None)
                try:
                    rows.append(measure_server(
                        server, scenario, headers, direct, args,
                        f"{scenario.name}: {name} {workers}w", target, profile_label))
                finally:
                    procs.stop(server.proc)
    return {"rows": rows}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2],
                    help="worker counts to measure (gateway and bare reference)")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--scenario", nargs="+", default=None,
                    help=f"only these ({', '.join(s.name for s in SCENARIOS)})")
    ap.add_argument("--profile", action="store_true",
                    help="after the measured runs, one more wrk run under py-spy on the "
                         "first gateway worker; prints top functions by own time")
    ap.add_argument("--profile-top", type=int, default=15)
    ap.add_argument("--wait-quiet", type=float, default=0, metavar="SECONDS",
                    help="before each wrk run, wait up to this long for other processes "
                         f"to use < {NOISY_CORES} cores (shared machines)")
    ap.add_argument("--no-bare", action="store_true",
                    help="skip the bare pass-through reference (bench/bare_proxy.py)")
    ap.add_argument("--autogroup-nice", type=int, default=0, metavar="N",
                    help="e.g. -10: run wrk, nginx and the servers' sessions ahead of the "
                         "machine's other sessions (root; for a shared machine)")
    ap.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (logs, db)")
    ap.add_argument("--output", type=Path, default=RESULTS / "latest.json")
    args = ap.parse_args(argv)
    global WAIT_QUIET, AUTOGROUP_NICE
    WAIT_QUIET = args.wait_quiet
    AUTOGROUP_NICE = args.autogroup_nice

    procs = Procs()
    tmp = Path(tempfile.mkdtemp(prefix="heliograph-bench-"))

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    # Even when started with SIGINT ignored (e.g. `&` in a script), Ctrl-C/kill -INT cleans up.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    started = time.time()
    try:
        result = bench(args, procs, tmp)
    except KeyboardInterrupt:
        print("interrupted; cleaning up", file=sys.stderr)
        return 130
    finally:
        procs.stop_all()
        if args.keep_tmp:
            print(f"temp dir kept: {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    table = print_table(result["rows"], args.connections)
    for row in result["rows"]:
        prof = row.get("profile")
        if prof:
            print(f"\n{row['label']}: top {len(prof['top_own'])} by own time "
                  f"({prof['samples']} busy samples, {prof['idle_samples_dropped']} idle "
                  f"dropped, {prof['wrk']['rps']:,.0f} req/s while "
                  f"sampled; raw stacks: {prof['raw']})")
            print("| own % | total % | function |\n|---|---|---|")
            for item in prof["top_own"]:
                print(f"| {item['own_pct']:.1f} | {item['total_pct']:.1f} | "
                      f"`{item['function']}` |")
    result.update({
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "args": {"duration": args.duration, "workers": args.workers,
                 "connections": args.connections, "warmup": WARMUP_REQUESTS,
                 "autogroup_nice": args.autogroup_nice},
        "machine": {"cpus": os.cpu_count(), "loadavg_at_end": os.getloadavg(),
                    "platform": platform.platform(),
                    "python": platform.python_version()},
        "table": table,
    })
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
