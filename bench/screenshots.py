"""Screenshots of every dashboard page, for the README (docs/screenshots/).

    python bench/screenshots.py                       # a fresh demo database and gateway
    python bench/screenshots.py --url http://127.0.0.1:8787 --key sk-hg-...   # a running one

Without --url it fills a temporary SQLite database with `heliograph demo` (a month of
history), starts the fake upstream and `heliograph serve`, makes a few real calls (one
with a session trace and a tool call) so every page has something to show, and shoots
each page with Playwright driving Debian's chromium. Console errors are printed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"
ADMIN_KEY = "sk-hg-screenshots-admin-key-0123456789"
PAGES = [("overview", "/dashboard/"), ("requests", "/dashboard/requests"),
         ("users", "/dashboard/users"), ("properties", "/dashboard/properties"),
         ("sessions", "/dashboard/sessions"), ("cache", "/dashboard/cache?period=30d"),
         ("ratelimits", "/dashboard/ratelimits?period=30d"), ("alerts", "/dashboard/alerts"),
         ("keys", "/dashboard/keys")]


def _free_port() -> int:
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(url)


def start_demo(workdir: Path, records: int) -> tuple[str, list[subprocess.Popen]]:
    upstream_port, port = _free_port(), _free_port()
    config = workdir / "heliograph.toml"
    config.write_text(f"""
[storage]
database_url = "sqlite:///{workdir / 'heliograph.db'}"
[providers.openai]
base_url = "http://127.0.0.1:{upstream_port}/v1"
api_key = "sk-fake"
[providers.anthropic]
base_url = "http://127.0.0.1:{upstream_port}"
api_key = "sk-fake"
""")
    env = {**os.environ, "HELIOGRAPH_ADMIN_KEY": ADMIN_KEY}
    heliograph = [sys.executable, "-m", "heliograph"]
    subprocess.run([*heliograph, "demo", "--config", str(config), "--records", str(records),
                    "--days", "30"], check=True, env=env, cwd=workdir, stdout=subprocess.DEVNULL)
    log = open(workdir / "servers.log", "ab")
    procs = [subprocess.Popen([*heliograph, "fake-upstream", "--port", str(upstream_port)],
                              stdout=log, stderr=log),
             subprocess.Popen([*heliograph, "serve", "--config", str(config), "--port", str(port)],
                              env=env, cwd=workdir, stdout=log, stderr=log)]
    url = f"http://127.0.0.1:{port}"
    _wait(url + "/healthz")
    return url, procs


def live_calls(url: str, key: str) -> str:
    """A few real calls through the gateway; the id of the one to show in detail."""
    import openai

    client = openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0)
    headers = {"Helicone-User-Id": "alice", "Helicone-Property-Workflow": "research-agent",
               "Helicone-Session-Id": "trip-planner-42", "Helicone-Session-Name": "Trip planner"}
    shown = ""
    for path, question in (("/plan", "Plan three days in Lisbon."),
                           ("/plan/search", "Find museums open on Monday."),
                           ("/plan/search/summarise", "Summarise the museum list."),
                           ("/answer", "Write the final itinerary.")):
        raw = client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini",
            messages=[{"role": "system", "content": "You are a travel agent."},
                      {"role": "user", "content": question}],
            extra_headers={**headers, "Helicone-Session-Path": path})
        shown = shown or raw.headers["helicone-id"]
    time.sleep(1.5)  # the journal and writer bring records to the database within a second
    return shown


def shoot(url: str, key: str, request_id: str | None) -> list[str]:
    from playwright.sync_api import sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"))
        page = browser.new_page(viewport={"width": 1400, "height": 900}, color_scheme="light")
        page.on("console", lambda m: problems.append(f"{m.type}: {m.text}")
                if m.type == "error" else None)
        page.goto(url + "/dashboard/login")
        page.screenshot(path=str(OUT / "login.png"))
        page.fill("#key", key)
        page.click("#sign-in")
        page.wait_for_url("**/dashboard/")
        pages = list(PAGES)
        if request_id:
            pages.insert(2, ("request", f"/dashboard/requests/{request_id}"))
            pages.insert(6, ("session", "/dashboard/sessions/trip-planner-42"))
        for name, path in pages:
            started = time.monotonic()
            page.goto(url + path)
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(OUT / f"{name}.png"), full_page=name != "requests")
            print(f"{name:12} {time.monotonic() - started:6.2f} s  {OUT / (name + '.png')}")
        browser.close()
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url")
    parser.add_argument("--key", default=ADMIN_KEY)
    parser.add_argument("--records", type=int, default=20000)
    args = parser.parse_args()
    procs: list[subprocess.Popen] = []
    workdir = Path(tempfile.mkdtemp(prefix="heliograph-screens-"))
    try:
        url = args.url
        if url is None:
            url, procs = start_demo(workdir, args.records)
        request_id = live_calls(url, args.key)
        problems = shoot(url, args.key, request_id)
        for problem in problems:
            print("console", problem)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
