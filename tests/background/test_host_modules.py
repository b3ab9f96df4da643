"""The background host's jobs load no OpenSSL (hashlib, hmac, secrets map libcrypto: ~3.5
MB RSS a process) until a notice is signed or an id made: importing and loading every job
of the host (as host.py does) leaves them out (issue 15). Checked in a fresh interpreter,
since the test process itself has long imported them."""

import subprocess
import sys

from heliograph.background.jobs import JOBS

OPENSSL = ("_hashlib", "hashlib", "hmac", "secrets")


def loaded_after(code: str, cwd) -> list[str]:
    probe = f"import sys\n{code}\nprint(' '.join(m for m in {OPENSSL!r} if m in sys.modules))"
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
