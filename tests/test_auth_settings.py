"""``[auth]`` in settings.toml: checked at start-up, the OIDC client secret never in the file."""

from __future__ import annotations

import pytest

from publisher.errors import ConfigError
from publisher.settings import load_settings


def test_the_client_secret_comes_from_the_environment_only(tmp_path):
    p = tmp_path / "settings.toml"
    p.write_text(
        '[auth.oidc]\nissuer = "https://sso.example.edu.cn"\nclient_id = "x"\n'
        'redirect_base_url = "https://xxgk.example.edu.cn"\nclient_secret = "s3cret"\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match="unknown setting 'auth.oidc.client_secret'"):
        load_settings(p)
    p.write_text('[auth.cas]\nserver_url = "https://cas.example.edu.cn/cas"\nversion = 4\nservice_base_url = "x"\n')
    with pytest.raises(ConfigError, match="version must be 2 or 3") as e:
        load_settings(p)
    assert "is not an http(s) URL" in str(e.value)


def test_role_rules_name_known_roles(tmp_path):
    p = tmp_path / "settings.toml"
    p.write_text(
        '[auth.mapping]\nroles = [{ attribute = "eduPersonAffiliation", value = "faculty", role = "boss" }]\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match="auth.mapping.roles.0.role: unknown role 'boss'"):
        load_settings(p)
