"""The [alerts], [smtp] and [dashboard] config sections."""

import pytest

from heliograph.config import ConfigError, load_settings


def write(tmp_path, text: str) -> str:
    path = tmp_path / "heliograph.toml"
    path.write_text(text)
    return str(path)


def test_alert_settings_are_read_and_default(tmp_path):
    defaults = load_settings(None, environ={})
    assert defaults.alerts_interval_s == 60 and defaults.alerts_timezone == "UTC"
    assert defaults.smtp_host == "" and defaults.smtp_starttls is True
    settings = load_settings(write(tmp_path, """
[alerts]
interval_s = 5
timezone = "Europe/Paris"
[smtp]
host = "smtp.example.com"
port = 465
tls = true
username = "alerts"
password = "pw"
from = "alerts@example.com"
[dashboard]
base_url = "https://heliograph.example.com"
"""), environ={"HELIOGRAPH_SMTP_PASSWORD": "from-env"})
    assert settings.alerts_interval_s == 5 and settings.alerts_timezone == "Europe/Paris"
    assert (settings.smtp_host, settings.smtp_port, settings.smtp_tls) == (
        "smtp.example.com", 465, True)
    assert settings.smtp_password == "from-env" and settings.smtp_from == "alerts@example.com"
    assert settings.dashboard_base_url == "https://heliograph.example.com"


@pytest.mark.parametrize("text, word", [
    ('[alerts]\ntimezone = "Mars/Olympus"\n', "time zone"),
    ("[alerts]\ninterval_s = 0\n", "interval_s"),
    ('[smtp]\nhots = "x"\n', "host"),
    ('[dashboard]\nbase_url = "ftp://x"\n', "base_url"),
])
def test_bad_alert_settings_are_refused_by_name(tmp_path, text, word):
    with pytest.raises(ConfigError, match=word):
        load_settings(write(tmp_path, text), environ={})
