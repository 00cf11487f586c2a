"""The config's layers (the file, provisioning, the web page) and the web page's form: what wins,
what a broken layer does, what a post changes and what it never writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from firmware import config, layers
from firmware.admin.configform import ConfigForm, loose_problems

FILE = """\
[sip]
server = "pbx.example.com"
username = "101"
password_file = "sip_password"

[phone]
name = "Alice Martin"
region = "BE"
state_dir = "{state}"
"""


@pytest.fixture
def path(tmp_path: Path) -> Path:
    secret = tmp_path / "sip_password"
    secret.write_text("s3cret-sip\n")
    secret.chmod(0o600)
    p = tmp_path / "config.toml"
    p.write_text(FILE.format(state=tmp_path / "state"))
    return p


def state(path: Path) -> Path:
    return path.parent / "state"


def test_later_layers_win_key_by_key_and_an_inline_secret_replaces_a_file() -> None:
    base = {"sip": {"server": "a", "password_file": "/x"}, "phone": {"name": "A"}}
    over = {"sip": {"server": "b", "password": "new"}}
    assert layers.merge(base, over) == {"sip": {"server": "b", "password": "new"},
                                        "phone": {"name": "A"}}
    # Both in one document stay both: config.py says "give password or password_file".
    both = {"sip": {"password": "a", "password_file": "/x"}}
    assert layers.merge(both) == both
    assert layers.sources(base, [("web page", over)]) == {
        "sip.server": "web page", "sip.password": "web page", "phone.name": "file"}


def test_a_layer_is_written_atomically_with_the_previous_kept_and_can_be_put_back(
        tmp_path: Path) -> None:
    target = tmp_path / "web.toml"
    layers.write(target, '[phone]\nname = "One"\n')
    layers.write(target, '[phone]\nname = "Two"\n')
    assert layers.read(target) == {"phone": {"name": "Two"}}
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["web.toml", "web.toml.previous"]
    assert layers.restore_previous(target)
    assert layers.read(target) == {"phone": {"name": "One"}}
    assert layers.read(target.with_name("web.toml.previous")) == {"phone": {"name": "Two"}}


def test_the_file_with_its_layers_and_a_bad_layer_left_out_with_a_reason(path: Path) -> None:
    layers.write(state(path) / layers.PROVISIONED, '[phone]\nname = "Reception"\n'
                 'region = "FR"\n')
    layers.write(state(path) / layers.WEB, '[phone]\nname = "Front desk"\n')
    cfg = config.load(path)
    assert (cfg.phone.name, cfg.phone.region) == ("Front desk", "FR")
    assert cfg.layers == (str(state(path) / layers.PROVISIONED), str(state(path) / layers.WEB))
    assert "with " + str(state(path) / layers.WEB) + " over it" in config.render(cfg)
    # A web edit that makes the config bad (written by hand, say): left out, provisioning kept.
    layers.write(state(path) / layers.WEB, '[phone]\nname = 7\n')
    cfg = config.load(path)
    assert (cfg.phone.name, cfg.phone.region) == ("Reception", "FR")
    assert cfg.warnings == (f"config: {state(path) / layers.WEB} not used: phone.name: must be "
                            "a string, not int",)
    # A layer that is not TOML at all: left out, said.
    (state(path) / layers.WEB).write_text("[phone\n")
    cfg = config.load(path)
    assert cfg.phone.name == "Reception" and "left out" in cfg.warnings[0]
    # With no layers the file alone, as before.
    assert config.load(path, with_layers=False).phone.name == "Alice Martin"


def test_a_form_with_two_mistakes_names_both_beside_their_boxes_and_writes_nothing(
        path: Path) -> None:
    form = ConfigForm(path, state(path))
    rows = {r.field.name: r for r in form.rows()}
    assert rows["phone.name"].text == "Alice Martin" and rows["phone.name"].source == "file"
    assert rows["sip.password"].text == "sip_password"  # a file's name, never its secret
    assert rows["sip.register_expires"].source == "default"
    posted = {name: r.text for name, r in rows.items()}
    posted.update({"sip.register_expires": "ten", "phone.region": "XX"})
    _, problems = form.edit(posted)
    assert problems == ["sip.register_expires: must be an integer, not str",
                        "phone.region: 'XX' is not an ISO country code (e.g. 'BE')"]
    assert not loose_problems(problems)
    shown = {r.field.name: r for r in form.rows(posted, problems)}
    assert shown["phone.region"].text == "XX"
    assert shown["phone.region"].problems == ("'XX' is not an ISO country code (e.g. 'BE')",)
    assert not (state(path) / layers.WEB).exists()


def test_a_good_edit_holds_only_what_changed_and_an_emptied_box_goes_back_to_the_file(
        path: Path) -> None:
    form = ConfigForm(path, state(path))
    posted = {r.field.name: r.text for r in form.rows()}
    layer, problems = form.edit({**posted, "phone.name": "Front desk", "sip.transport": "tcp"})
    assert problems == []
    assert layer == {"phone": {"name": "Front desk"}, "sip": {"transport": "tcp"}}
    form.apply(layer)
    assert config.load(path).phone.name == "Front desk"
    posted = {r.field.name: r.text for r in form.rows()}
    layer, problems = form.edit({**posted, "phone.name": ""})
    assert problems == [] and layer == {"sip": {"transport": "tcp"}}
    form.apply(layer)
    assert config.load(path).phone.name == "Alice Martin"
    assert form.undo() and config.load(path).phone.name == "Front desk"


def test_a_password_box_left_empty_keeps_the_secret_and_a_typed_one_replaces_it(
        tmp_path: Path) -> None:
    p = tmp_path / "config.toml"
    p.write_text('[sip]\nserver = "pbx"\nusername = "101"\npassword = "old-secret"\n'
                 f'[phone]\nstate_dir = "{tmp_path}"\n')
    form = ConfigForm(p, tmp_path)
    rows = {r.field.name: r for r in form.rows()}
    assert rows["sip.password"].text == "" and rows["sip.password"].secret_set
    posted = {name: r.text for name, r in rows.items()}
    assert form.edit(posted) == ({}, [])
    layer, problems = form.edit({**posted, "sip.password": "new-secret"})
    assert problems == [] and layer == {"sip": {"password": "new-secret"}}
    # Refused for another box: the typed password is not sent back in the page.
    _, problems = form.edit({**posted, "sip.password": "typed-secret", "phone.region": "XX"})
    assert problems and all(r.text != "typed-secret" for r in form.rows(
        {**posted, "sip.password": "typed-secret", "phone.region": "XX"}, problems))
    form.apply(layer)
    assert config.load(p).sip.password.reveal() == "new-secret"
    assert "new-secret" not in config.render(config.load(p))
