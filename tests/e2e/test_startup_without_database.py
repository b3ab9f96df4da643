"""`heliograph serve` with its PostgreSQL database unreachable: it does not start (no key
could be checked and the schema could not be migrated), and says so in one clear line on
stderr, without a traceback, within seconds."""

import os
import subprocess
import sys
import time

from servers import ADMIN_KEY, free_port


def test_serve_refuses_to_start_with_one_clear_line(tmp_path):
    unreachable = f"postgresql://postgres@127.0.0.1:{free_port()}/heliograph"
    config = tmp_path / "heliograph.toml"
    config.write_text(f'[storage]\ndatabase_url = "{unreachable}"\n'
                      f'journal_dir = "{tmp_path / "journal"}"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("HELIOGRAPH_")}
    env["HELIOGRAPH_ADMIN_KEY"] = ADMIN_KEY
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "heliograph", "serve", "--config",
                           str(config), "--port", str(free_port())], capture_output=True,
                          text=True, cwd=tmp_path, timeout=60, env=env)
    took = time.monotonic() - started
    assert done.returncode == 1, done
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if not line.startswith(
        ("Heliograph ", "database "))]  # the two startup lines that name the config
    assert len(errors) == 1, done.stderr
    assert errors[0].startswith("Error: cannot open database postgresql://"), errors
    assert "Connection refused" in errors[0] and "needs its database at startup" in errors[0]
    assert took < 15, f"took {took:.1f} s to give up"
