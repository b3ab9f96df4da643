"""The background host's jobs load no OpenSSL (hashlib, hmac, secrets map libcrypto: ~3.5
MB RSS a process) until a notice is signed or an id made, and the alerts job no analytics
reader (~1.3 MB) until a rule is evaluated or a webhook needs a record: loading every job
of the host (as host.py does) and an alerts pass with nothing configured leave them out
(issue 15). Checked in a fresh interpreter, since the test process itself has long
imported them."""

import subprocess
import sys

from heliograph.background.jobs import JOBS

OPENSSL = ("_hashlib", "hashlib", "hmac", "secrets")
ANALYTICS = ("heliograph.analytics", "heliograph.analytics.reader")


def loaded_after(code: str, cwd, names=OPENSSL) -> list[str]:
    probe = f"import sys\n{code}\nprint(' '.join(m for m in {names!r} if m in sys.modules))"
    # cwd: `-c` puts the working directory first on sys.path.
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=60, check=True, cwd=cwd)
    return done.stdout.split()


def test_the_hosts_jobs_load_no_openssl(tmp_path):
    code = ("from heliograph.background.jobs import JOBS, load_job\n"
            "import heliograph.background.host\n"
            "for spec in JOBS:\n    load_job(spec)")
    assert loaded_after(code, tmp_path) == []
    assert len(JOBS) == 5


def test_an_alerts_pass_with_nothing_configured_loads_no_analytics(tmp_path):
    code = ("import os\n"
            "os.environ['HELIOGRAPH_CONFIG'] = 'absent.toml'\n"
            "from pathlib import Path\n"
            "from heliograph.alerts.job import AlertsJob\n"
            "from heliograph.background.jobs import JobContext\n"
            "from heliograph.store import open_store\n"
            f"url = 'sqlite:///{tmp_path}/h.db'\n"
            "open_store(url).close()\n"   # the schema, as serve makes it
            "job = AlertsJob(JobContext(Path('journal'), url))\n"
            "assert job.run_once() is True\n"
            "job.close()")
    assert loaded_after(code, tmp_path, ANALYTICS) == []


def test_signing_a_notice_still_signs_and_verifies():
    from heliograph.alerts.channels import sign, verify
    from heliograph.alerts.model import new_id, new_secret

    secret = new_secret()
    assert secret.startswith("whsec_") and len(secret) == 6 + 48
    assert new_id("rule").startswith("rule_")
    header = sign(secret, b'{"a": 1}', 1_700_000_000)
    assert header.startswith("t=1700000000,v1=")
    assert not verify(secret, b'{"a": 1}', header)            # too old
    assert verify(secret, b'{"a": 1}', sign(secret, b'{"a": 1}'))
    assert not verify(secret, b'{"a": 2}', sign(secret, b'{"a": 1}'))
