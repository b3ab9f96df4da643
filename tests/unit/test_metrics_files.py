"""prometheus-client's multiprocess files on a full disk: an OSError where the value is
created, never a SIGBUS that kills the process (heliograph/metrics_files.py), and the
supervisor naming the signal that killed a worker."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest

from heliograph.supervisor import describe_exit

# Run in a child: without the reservation the child dies of SIGBUS, which must fail the
# test rather than kill pytest. It prints what happened to each step.
CHILD = textwrap.dedent("""
    import os, subprocess, sys
    folder, install, stage = sys.argv[1], sys.argv[2] == "1", sys.argv[3]
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
    from prometheus_client import CollectorRegistry, Counter
    if install:
        from heliograph import metrics_files
        metrics_files.install()
    counter = Counter("c", "help", ["model"], registry=CollectorRegistry())

    def fill():
        subprocess.run(["dd", "if=/dev/zero", f"of={folder}/filler", "bs=64k"],
                       capture_output=True)

    if stage == "grow":  # the file exists with room for a few values, then the disk fills
        counter.labels("first").inc()
        fill()
        labels = [f"model-{n:05d}-" + "x" * 100 for n in range(2000)]  # past 64 KiB
    else:                # the disk is full before this process's first value
        fill()
        labels = ["first"]
    try:
        for label in labels:
            counter.labels(label).inc()
    except OSError as exc:
        print("oserror", exc.errno, flush=True)
    else:
        print("counted", flush=True)
    """)


@pytest.fixture()
def full_disk(tmp_path):
    folder = tmp_path / "fs"
    folder.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs to fill (needs root): {done.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def run_child(folder, install: bool, stage: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", CHILD, str(folder), "1" if install else "0",
                           stage], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("stage", ["create", "grow"])
def test_a_full_disk_is_an_error_where_the_value_is_made(full_disk, stage):
    done = run_child(full_disk, True, stage)
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    assert done.stdout.split() == ["oserror", "28"]  # ENOSPC
    # No empty file left behind: a scrape reads every file's header.
    for path in full_disk.glob("*.db"):
        assert path.stat().st_size > 0


@pytest.mark.parametrize("stage", ["create", "grow"])
def test_without_the_reservation_the_process_is_killed(full_disk, stage):
    """What the reservation prevents (if prometheus-client ever reserves blocks itself,
    this fails and metrics_files can go)."""
    done = run_child(full_disk, False, stage)
    assert done.returncode == -signal.SIGBUS, (done.returncode, done.stdout, done.stderr)


def test_a_dead_worker_is_described_by_its_signal_or_status():
    assert describe_exit(-signal.SIGBUS) == "was killed by SIGBUS"
    assert describe_exit(-signal.SIGKILL) == "was killed by SIGKILL"
    assert describe_exit(1) == "exited with status 1"


# Counts in a parent and in a child forked after the counter exists: each in its own
# file, and no getpid() system call per increment.
FORKING_CHILD = textwrap.dedent("""
    import os, sys
    folder = sys.argv[1]
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
    from heliograph import metrics_files
    metrics_files.install()
    from prometheus_client import CollectorRegistry, Counter
    counter = Counter("c", "help", registry=CollectorRegistry())
    counter.inc()
    calls = []   # getpid() made from Python code (prometheus-client's own calls)
    sys.setprofile(lambda frame, event, arg: event == "c_call"
                   and getattr(arg, "__name__", "") == "getpid" and calls.append(1))
    for _ in range(100):
        counter.inc()
    sys.setprofile(None)
    print("getpid calls", len(calls), flush=True)
    child = os.fork()
    if child == 0:
        counter.inc(1000)
        os._exit(0)
    os.waitpid(child, 0)
    print("child", child, flush=True)
    """)


def test_values_keep_the_pid_and_a_forked_child_counts_in_its_own_file(tmp_path):
    done = subprocess.run([sys.executable, "-c", FORKING_CHILD, str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert lines[0] == "getpid calls 0"
    child = int(lines[1].split()[1])
    from prometheus_client.mmap_dict import MmapedDict
    by_file = {}
    for path in tmp_path.glob("counter_*.db"):
        values = MmapedDict.read_all_values_from_file(str(path))
        by_file[path.name] = sum(entry[1] for entry in values)   # (key, value, …)
    assert by_file[f"counter_{child}.db"] == 1000
    assert sum(by_file.values()) == 1101   # the parent's 101 in the parent's file


# The metrics sink's own adders (metrics_files.adder) in multiprocess mode: what a scrape
# reads must be what prometheus-client's Counter.inc / Histogram.observe would have
# written, bucket by bucket, and a forked child must still count in a file of its own.
SINK_CHILD = textwrap.dedent("""
    import os, sys
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = sys.argv[1]
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector
    from heliograph.records import new_record
    from heliograph.sinks.metrics import MetricsSink

    sink = MetricsSink()
    def record(latency_ms, tokens):
        rec = new_record("r", 0.0, "/v1/chat/completions")
        rec.update(model="m", provider="p", organization="o", status=200,
                   latency_ms=latency_ms, prompt_tokens=tokens, completion_tokens=1,
                   cost_usd=0.5)
        return rec
    # On a bound (25 ms is the first bucket's), between bounds, past the last one.
    for latency_ms, tokens in ((10.0, 1), (25.0, 2), (30.0, 3), (700_000.0, 4)):
        sink.accept(record(latency_ms, tokens))
    child = os.fork()
    if child == 0:
        sink.accept(record(40.0, 100))
        os._exit(0)
    os.waitpid(child, 0)
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    for metric in registry.collect():
        for s in metric.samples:
            if s.labels.get("model") == "m":
                print(s.name, s.labels.get("le") or s.labels.get("kind") or "-", s.value)
    """)


def test_the_sinks_adders_write_what_prometheus_would_and_a_fork_counts_apart(tmp_path):
    done = subprocess.run([sys.executable, "-c", SINK_CHILD, str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    got = {}
    for line in done.stdout.splitlines():
        name, label, number = line.split()
        got[(name, label)] = float(number)
    assert got[("heliograph_requests_total", "-")] == 5
    buckets = "heliograph_request_duration_seconds_bucket"
    assert got[(buckets, "0.025")] == 2      # 10 ms and 25 ms: a bound is its bucket's
    assert got[(buckets, "0.05")] == 4       # + 30 ms, + the child's 40 ms
    assert got[(buckets, "600.0")] == 4
    assert got[(buckets, "+Inf")] == 5      # 700 s: past every bound
    assert got[("heliograph_request_duration_seconds_count", "-")] == 5
    assert got[("heliograph_request_duration_seconds_sum", "-")] == pytest.approx(700.105)
    assert got[("heliograph_tokens_total", "prompt")] == 110
    assert got[("heliograph_tokens_total", "completion")] == 5
    assert got[("heliograph_cost_usd_total", "-")] == 2.5
    assert len(list(tmp_path.glob("counter_*.db"))) == 2   # the child's file of its own


# An adder writes a value's 8 bytes only: the timestamp beside it must read 0.0, as
# prometheus-client's own inc leaves it, even for a value whose object held another.
ADDER_CHILD = textwrap.dedent("""
    import os, sys
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = sys.argv[1]
    from heliograph import metrics_files
    metrics_files.install()
    from prometheus_client import CollectorRegistry, Counter
    from prometheus_client.mmap_dict import MmapedDict
    value = Counter("c", "help", ["model"], registry=CollectorRegistry()).labels("m")._value
    value._timestamp = 123.0
    add = metrics_files.adder(value)
    for amount in (1.0, 2.5, 0.25):
        add(amount)
    for key, number, timestamp, _ in MmapedDict.read_all_values_from_file(value._file._fname):
        if key == value._key:
            print(number, timestamp, value._value)
    """)


def test_an_adder_writes_the_value_and_leaves_a_zero_timestamp(tmp_path):
    done = subprocess.run([sys.executable, "-c", ADDER_CHILD, str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert [float(x) for x in done.stdout.split()] == [3.75, 0.0, 3.75]
