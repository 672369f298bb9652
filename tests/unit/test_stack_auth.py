"""STACK_AUTH's decisions and files, in-process: when it is on (and what `make up` says),
which compose files that loads, the folder scripts/auth.py writes (the web config's bcrypt
hash checks the password and refuses others; a second run changes nothing; a new password
or certificate is written), and the certificate scripts/certs.py re-issues when the
stack's name changes. The services using them are proven in tests/auth (the auth tier)."""
from __future__ import annotations

import base64
import json
import os
import stat

import bcrypt
import pytest
from cryptography import x509

from scripts import auth, certs, compose_info

SETTINGS = {"STACK_AUTH_USER": "stack", "STACK_AUTH_PASSWORD": "pw-1", "STACK_OTLP_TOKEN": "tok-1"}


@pytest.mark.parametrize(("settings", "on", "says"), [
    ({}, False, ""),
    ({"BIND_ADDRESS": "127.0.0.1"}, False, ""),
    ({"BIND_ADDRESS": "::1", "STACK_AUTH": "auto"}, False, ""),
    ({"BIND_ADDRESS": "localhost"}, False, ""),
    ({"BIND_ADDRESS": "0.0.0.0"}, True, "on by itself"),
    ({"BIND_ADDRESS": "192.168.1.20"}, True, "BIND_ADDRESS=192.168.1.20 is not a loopback"),
    ({"BIND_ADDRESS": "0.0.0.0", "STACK_AUTH": "AUTO"}, True, "on by itself"),
    ({"STACK_AUTH": "on"}, True, "STACK_AUTH=on"),
    ({"BIND_ADDRESS": "0.0.0.0", "STACK_AUTH": "off"}, False, "WARNING"),
    ({"BIND_ADDRESS": "127.0.0.1", "STACK_AUTH": "off"}, False, ""),
])
def test_when_it_is_on_and_what_make_up_says(settings, on, says):
    got_on, line = compose_info.auth_mode(settings)
    assert got_on is on
    assert (says in line) if says else line == ""


def test_a_typo_is_an_error_not_a_silent_off():
    with pytest.raises(ValueError, match="STACK_AUTH='of'"):
        compose_info.auth_mode({"STACK_AUTH": "of", "BIND_ADDRESS": "0.0.0.0"})


def test_the_overlay_is_loaded_exactly_when_it_is_on(tmp_path):
    (tmp_path / compose_info.AUTH_FILE).write_text("services: {}\n")
    assert compose_info.AUTH_FILE not in compose_info.compose_files(tmp_path, user={})
    shared = compose_info.compose_files(tmp_path, user={"BIND_ADDRESS": "0.0.0.0"})
    assert shared[-1] == compose_info.AUTH_FILE and shared[0] == compose_info.BASE_FILE
    assert compose_info.AUTH_FILE not in compose_info.compose_files(tmp_path, user={"BIND_ADDRESS": "0.0.0.0",
                                                                                    "STACK_AUTH": "off"})
    # The scale-out profile never loads it (`make up-scale` refuses instead).
    assert compose_info.AUTH_FILE not in compose_info.compose_files(tmp_path, user={"STACK_AUTH": "on"}, scale=True)


def test_make_up_scale_refuses_while_it_is_on(monkeypatch, capsys):
    monkeypatch.setenv("STACK_AUTH", "on")
    assert compose_info.main(["auth", "--scale"]) == 2
    assert "scale-out profile does not run behind STACK_AUTH" in capsys.readouterr().err
    monkeypatch.setenv("STACK_AUTH", "off")
    monkeypatch.setenv("BIND_ADDRESS", "127.0.0.1")
    assert compose_info.main(["auth", "--scale"]) == 1


def test_the_folder_holds_a_web_config_whose_hash_checks_the_password(tmp_path):
    folder, changed = auth.render(SETTINGS, tmp_path / "secrets")
    assert set(changed) == {"cert.pem", "key.pem", "ca.pem", "web.yml", "htpasswd", "client.yml", "user",
                            "password", "authorization", "otlp-token"}
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o755
    assert all(stat.S_IMODE(os.stat(folder / n).st_mode) == 0o644 for n in changed)
    web = json.loads((folder / "web.yml").read_text().split("\n", 1)[1])
    hashed = web["basic_auth_users"]["stack"].encode()
    assert bcrypt.checkpw(b"pw-1", hashed) and not bcrypt.checkpw(b"pw-2", hashed)
    assert web["tls_server_config"] == {"cert_file": "/run/stack-auth/cert.pem", "key_file": "/run/stack-auth/key.pem"}
    assert (folder / "htpasswd").read_text() == f"stack:{hashed.decode()}\n"
    client = json.loads((folder / "client.yml").read_text().split("\n", 1)[1])
    assert client["basic_auth"] == {"username": "stack", "password_file": "/run/stack-auth/password"}
    assert (folder / "password").read_text() == "pw-1" and (folder / "otlp-token").read_text() == "tok-1"
    assert base64.b64decode((folder / "authorization").read_text().removeprefix("Basic ")) == b"stack:pw-1"
    # The certificate it serves is the local CA's (scripts/certs.py), valid for the service names.
    cert = x509.load_pem_x509_certificate((folder / "cert.pem").read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert {"prometheus", "otel-edge", "localhost"} <= set(names)
    assert (folder / "ca.pem").read_bytes() == (tmp_path / "secrets" / "tls" / "ca.pem").read_bytes()


def test_a_second_run_changes_nothing_and_a_new_password_is_hashed_anew(tmp_path):
    folder, _ = auth.render(SETTINGS, tmp_path)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert auth.render(SETTINGS, tmp_path)[1] == []
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    _, changed = auth.render({**SETTINGS, "STACK_AUTH_PASSWORD": "pw-2"}, tmp_path)
    assert set(changed) == {"web.yml", "htpasswd", "password", "authorization"}
    assert bcrypt.checkpw(b"pw-2", (folder / "htpasswd").read_text().strip().split(":", 1)[1].encode())


def test_your_own_certificate_is_served_all_three_files_or_none(tmp_path):
    mine = tmp_path / "mine"
    certs.ensure(mine, ["stack.example.com"])
    own = {"STACK_TLS_CERT_FILE": str(mine / "server.pem"), "STACK_TLS_KEY_FILE": str(mine / "server-key.pem"),
           "STACK_TLS_CA_FILE": str(mine / "ca.pem")}
    folder, _ = auth.render({**SETTINGS, **own}, tmp_path / "secrets")
    assert (folder / "cert.pem").read_bytes() == (mine / "server.pem").read_bytes()
    assert not (tmp_path / "secrets" / "tls").exists(), "made a CA although the user gave their own"
    with pytest.raises(ValueError, match="STACK_TLS_KEY_FILE"):
        auth.render({**SETTINGS, "STACK_TLS_CERT_FILE": own["STACK_TLS_CERT_FILE"],
                     "STACK_TLS_CA_FILE": own["STACK_TLS_CA_FILE"]}, tmp_path / "secrets")
    with pytest.raises(ValueError, match="no such file"):
        auth.render({**SETTINGS, **own, "STACK_TLS_CA_FILE": str(tmp_path / "missing.pem")}, tmp_path / "secrets")


@pytest.mark.parametrize("missing", ["STACK_AUTH_PASSWORD", "STACK_OTLP_TOKEN"])
def test_an_empty_secret_is_named(tmp_path, missing):
    with pytest.raises(ValueError, match=missing):
        auth.render({**SETTINGS, missing: ""}, tmp_path)


def test_a_new_name_for_the_stack_gets_a_new_certificate_from_the_same_ca(tmp_path):
    tls = tmp_path / "tls"
    certs.ensure(tls, certs.names_for({"STACK_HOST": "old.example.com"}, []))
    first, ca = (tls / "server.pem").read_bytes(), (tls / "ca.pem").read_bytes()
    assert certs.ensure(tls, certs.names_for({"STACK_HOST": "old.example.com"}, [])) == []
    assert certs.ensure(tls, certs.names_for({"STACK_HOST": "new.example.com"}, [])) == ["server.pem", "server-key.pem"]
    assert (tls / "server.pem").read_bytes() != first and (tls / "ca.pem").read_bytes() == ca
    assert stat.S_IMODE(os.stat(tls / "server-key.pem").st_mode) == 0o600
