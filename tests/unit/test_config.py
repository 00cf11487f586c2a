"""The config schema: every problem at once, did-you-mean, secrets in files, masking."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from firmware import config
from firmware.config import ConfigError

GOOD = """
[sip]
server = "pbx.example.com"
username = "101"
password = "s3cret-sip"

[phone]
region = "be"

[odoo]
url = "https://odoo.example.com/"
database = "prod"
login = "alice@example.com"
api_key = "k3y-odoo"
"""


def write(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        config.load(write(tmp_path, text))
    return info.value.problems


def test_a_good_config_loads_with_defaults(tmp_path):
    cfg = config.load(write(tmp_path, GOOD))
    assert cfg.sip.port is None and cfg.sip.transport == "udp"  # absent: found by DNS
    assert cfg.sip.realm_domain == "pbx.example.com"
    assert cfg.phone.region == "BE"
    assert cfg.odoo is not None and cfg.odoo.url == "https://odoo.example.com"
    assert cfg.odoo.api_key.reveal() == "k3y-odoo"
    assert cfg.control is None


def test_every_problem_is_reported_at_once(tmp_path):
    found = problems(tmp_path, """
[sip]
server = "pbx"
pasword = "x"
port = "5060"
transport = "sctp"

[phone]
region = "Belgium"
interdigit_seconds = 0
voicemail = "voicemail"

[control]
listen = "0.0.0.0:8089"

[admin]
listen = "0.0.0.0:80"

[odoo]
url = "odoo.example.com"

[audio]
backend = "wav"

[hardwre]
""")
    assert "sip.username: required" in found
    assert "sip.password: required (or password_file)" in found
    assert "sip.pasword: unknown key (did you mean 'password'?)" in found
    assert "sip.port: must be an integer, not str" in found
    assert any(p.startswith("sip.transport: must be one of 'udp', 'tcp', 'tls'") for p in found)
    assert any(p.startswith("phone.region: 'Belgium' is not an ISO country code") for p in found)
    assert "phone.interdigit_seconds: must be between 1 and 30" in found
    assert any(p.startswith("control.token: required when control.listen") for p in found)
    assert any(p.startswith("admin.password: required when admin.listen") for p in found)
    assert any(p.startswith("phone.voicemail: must be a number the keypad") for p in found)
    assert "odoo.url: must start with http:// or https://" in found
    assert "odoo.database: required" in found
    assert "audio.mic: required when audio.backend is 'wav'" in found
    assert "hardwre: unknown section (did you mean 'hardware'?)" in found
    assert len(found) >= 13


def test_missing_sip_section_names_each_required_key(tmp_path):
    found = problems(tmp_path, "[phone]\nregion = 'BE'\n")
    assert found[:2] == ["sip.server: required", "sip.username: required"]


def test_toml_syntax_error_and_missing_file(tmp_path):
    found = problems(tmp_path, "[sip\nserver=1")
    assert len(found) == 1 and found[0].startswith("config: ")
    with pytest.raises(ConfigError, match="not found"):
        config.load(tmp_path / "nope.toml")


def test_secret_from_a_private_file(tmp_path):
    secret = tmp_path / "sip_password"
    secret.write_text("from-file\n")
    secret.chmod(0o600)
    text = GOOD.replace('password = "s3cret-sip"', 'password_file = "sip_password"')
    cfg = config.load(write(tmp_path, text))
    assert cfg.sip.password.reveal() == "from-file"


def test_secret_file_readable_by_others_is_refused(tmp_path):
    secret = tmp_path / "sip_password"
    secret.write_text("x")
    secret.chmod(0o644)
    text = GOOD.replace('password = "s3cret-sip"', 'password_file = "sip_password"')
    found = problems(tmp_path, text)
    assert found == [f"sip.password_file: {secret} is readable by group or others: "
                     f"chmod 600 {secret}"]


def test_secret_given_twice_is_refused(tmp_path):
    text = GOOD.replace('password = "s3cret-sip"',
                        'password = "a"\npassword_file = "/nonexistent"')
    found = problems(tmp_path, text)
    assert "sip.password: give password or password_file, not both" in found


def test_secrets_never_print(tmp_path):
    cfg = config.load(write(tmp_path, GOOD + '\n[control]\nlisten = "127.0.0.1:9000"\n'
                                             'token = "t0ken-ctl"\n'))
    rendered = config.render(cfg)
    for secret in ("s3cret-sip", "k3y-odoo", "t0ken-ctl"):
        assert secret not in rendered
        assert secret not in repr(cfg)
    assert 'password = "********"' in rendered
    assert 'listen = "127.0.0.1:9000"' in rendered


def test_rendered_config_is_valid_toml_that_loads_back(tmp_path):
    import tomllib

    cfg = config.load(write(tmp_path, GOOD))
    doc = tomllib.loads(config.render(cfg))
    assert doc["sip"]["server"] == "pbx.example.com"
    assert doc["hardware"]["display_address"] == 0x3C


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "firmware", *args], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "PYTHONWARNINGS": "ignore"})


def test_check_config_lists_all_problems_and_exits_78(tmp_path):
    path = write(tmp_path, "[sip]\nserver = ''\nusername = 7\n[phone]\nregoin = 'BE'\n")
    done = run_cli("check-config", "--config", str(path))
    assert done.returncode == 78
    assert "Traceback" not in done.stderr
    for line in ("sip.server: must not be empty", "sip.username: must be a string, not int",
                 "sip.password: required (or password_file)",
                 "phone.regoin: unknown key (did you mean 'region'?)"):
        assert line in done.stderr


def test_check_config_prints_the_effective_config_masked(tmp_path):
    done = run_cli("check-config", "--config", str(write(tmp_path, GOOD)))
    assert done.returncode == 0, done.stderr
    assert 'server = "pbx.example.com"' in done.stdout
    assert "s3cret-sip" not in done.stdout + done.stderr
    assert "k3y-odoo" not in done.stdout + done.stderr


def test_hardware_pins_used_twice_and_unknown_display_are_named(tmp_path):
    found = problems(tmp_path, GOOD + """
[hardware]
hook_pin = 16
led_pin = 5
display = "ssd1036"
keypad_drive = "columns"
hook_pull = "up"
""")
    assert "hardware.hook_pin: GPIO 16 is also keypad_cols" in found
    assert "hardware.led_pin: GPIO 5 is also keypad_rows" in found
    assert any(p.startswith("hardware.display: must be one of") and "ssd1306" in p
               for p in found)
    assert any(p.startswith("hardware.keypad_drive: must be one of 'rows', 'cols'")
               for p in found)
    assert not any(p.startswith("hardware.hook_pull") for p in found)


def test_sip_credentials_may_come_from_odoo(tmp_path):
    cfg = config.load(write(tmp_path, """
[sip]
server = "pbx.example.com"

[odoo]
url = "https://odoo.example.com"
database = "prod"
login = "alice@example.com"
api_key = "k3y"
sip_from_odoo = true
"""))
    assert cfg.sip.username == "" and cfg.odoo is not None and cfg.odoo.sip_from_odoo
    found = problems(tmp_path, '[sip]\nserver = "pbx"\n')
    assert "sip.username: required" in found


def test_secret_files_from_systemd_credentials(tmp_path, monkeypatch):
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "sip_password").write_text("from-systemd\n")
    (creds / "sip_password").chmod(0o400)
    text = GOOD.replace('password = "s3cret-sip"',
                        'password_file = "${CREDENTIALS_DIRECTORY}/sip_password"')
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    assert any("CREDENTIALS_DIRECTORY is unset" in p for p in problems(tmp_path, text))
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    assert config.load(write(tmp_path, text)).sip.password.reveal() == "from-systemd"


def test_root_only_secret_files_reach_the_service_through_its_credentials(tmp_path, monkeypatch):
    # The unit hands every file of /etc/deskphone to the service as deskphone_<name>: the same
    # config works for the unprivileged service and for root's `deskphone check-config`.
    etc = tmp_path / "etc"
    etc.mkdir()
    monkeypatch.setattr(config, "CREDENTIAL_SOURCE", etc)
    secret = etc / "sip_password"
    secret.write_text("from-the-file\n")
    secret.chmod(0o600)
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "deskphone_sip_password").write_text("from-systemd\n")
    text = GOOD.replace('password = "s3cret-sip"', f'password_file = "{secret}"')
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    assert config.load(write(tmp_path, text)).sip.password.reveal() == "from-the-file"
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    assert config.load(write(tmp_path, text)).sip.password.reveal() == "from-systemd"
    # The file itself must still be root-only, copy or not.
    secret.chmod(0o644)
    assert any("readable by group or others" in p for p in problems(tmp_path, text))
    # A file outside /etc/deskphone is read as it is.
    other = tmp_path / "sip_password"
    other.write_text("elsewhere\n")
    other.chmod(0o600)
    text = GOOD.replace('password = "s3cret-sip"', f'password_file = "{other}"')
    assert config.load(write(tmp_path, text)).sip.password.reveal() == "elsewhere"


def test_the_example_file_is_made_from_the_schema():
    # One declaration per setting: config/example.toml's keys, values and comments follow it.
    example = Path(__file__).resolve().parents[2] / "config" / "example.toml"
    assert example.read_text() == config.example(), (
        "config/example.toml is stale: python -m firmware.config > config/example.toml")


def test_the_example_file_is_a_valid_config_once_its_secrets_exist(tmp_path):
    import tomllib

    doc = tomllib.loads(config.example())
    for section in doc.values():
        for key in [k for k in section if k.endswith("_file")]:
            section[key.removesuffix("_file")] = "an-inline-secret"
            del section[key]
    cfg = config.parse(doc, base=tmp_path)
    assert cfg.sip.server == "pbx.example.com" and cfg.phone.region == "BE"
    assert cfg.hardware.display_address == 0x3C


def test_every_phone_setting_reaches_the_phone(tmp_path):
    from dataclasses import fields

    from firmware.app import settings_from

    cfg = config.load(write(tmp_path, GOOD.replace(
        'region = "be"', 'region = "be"\ninterdigit_seconds = 7\nreject_code = 603')))
    settings = settings_from(cfg)
    for f in fields(config.PhoneConfig):
        assert getattr(settings, f.name) == getattr(cfg.phone, f.name), f.name
    assert (settings.interdigit_seconds, settings.reject_code) == (7.0, 603)
    assert settings.extension == "101"


def test_required_srtp_needs_tls_or_the_admins_word(tmp_path):
    found = problems(tmp_path, GOOD.replace('[sip]\n', '[sip]\nsrtp = "required"\n', 1))
    assert any(p.startswith('sip.srtp: "required" needs transport = "tls"') for p in found)
    cfg = config.load(write(tmp_path, GOOD.replace(
        '[sip]\n', '[sip]\nsrtp = "required"\nsrtp_over_udp = true\n', 1)))
    assert cfg.sip.srtp == "required"
