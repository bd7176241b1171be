"""The sign-in rules that need no server: sealing a key for one tenant, what a redirect may be, which
bearer values are tokens, and the settings sign-in needs."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from suno_mcp.domain import signin
from suno_mcp.domain.errors import ConfigurationError
from suno_mcp.domain.tenancy import bearer_key
from suno_mcp.settings import load_settings

KEYS = signin.Keys.from_secret(SecretStr("s" * 40))
TEAM = {"SUNO_MCP_KEYS": "per-request", "SUNO_MCP_TENANT_SECRET": "t" * 40}


def test_a_sealed_key_opens_for_its_own_tenant_only_and_under_its_own_secret_only() -> None:
    sealed = KEYS.seal_key("t-alice", SecretStr("gp-secret-key"))
    assert "gp-secret-key" not in sealed
    opened = KEYS.open_key("t-alice", sealed)
    assert opened is not None
    assert opened.get_secret_value() == "gp-secret-key"
    assert KEYS.open_key("t-bob", sealed) is None  # moved to another tenant's row
    assert signin.Keys.from_secret(SecretStr("o" * 40)).open_key("t-alice", sealed) is None
    tampered = sealed[:-4] + ("AAAA" if not sealed.endswith("AAAA") else "BBBB")
    assert KEYS.open_key("t-alice", tampered) is None
    assert KEYS.open_key("t-alice", "v0." + sealed.split(".", 1)[1]) is None
    # A fresh nonce each time: sealing twice gives two texts.
    assert KEYS.seal_key("t-alice", SecretStr("gp-secret-key")) != sealed


def test_what_the_database_keeps_of_a_token_is_a_keyed_hash() -> None:
    token = signin.mint(signin.ACCESS_PREFIX)
    assert token.startswith("sma_")
    assert len(token) > 40
    assert KEYS.hash(token) == KEYS.hash(token)
    assert token not in KEYS.hash(token)
    assert signin.Keys.from_secret(SecretStr("o" * 40)).hash(token) != KEYS.hash(token)
    assert "seal" not in repr(KEYS)
    assert KEYS.seal.hex() not in repr(KEYS)


@pytest.mark.parametrize(
    "uri",
    [
        "https://claude.ai/api/mcp/auth_callback",
        "https://chatgpt.com/connector_platform_oauth_redirect",
        "http://127.0.0.1:33418/callback",
        "http://localhost:6274/oauth/callback",
        "http://[::1]:8080/cb",
        "cursor://anysphere.cursor-mcp/oauth/callback",
        "vscode://vscode.github-authentication/did-authenticate",
    ],
)
def test_redirects_a_client_may_register(uri: str) -> None:
    assert signin.redirect_problem(uri) is None


@pytest.mark.parametrize(
    ("uri", "says"),
    [
        ("https://10.1.2.3/cb", "private"),
        ("https://192.168.0.10/cb", "private"),
        ("https://169.254.169.254/latest/meta-data", "private"),
        ("https://[fd12::1]/cb", "private"),
        ("https://2130706433/cb", "private"),  # 127.0.0.1 as one number
        ("https://printer.local/cb", "private"),
        ("http://example.com/cb", "https"),
        ("https://example.com/cb#frag", "fragment"),
        ("https://user:pw@example.com/cb", "user name"),
        ("javascript:alert(1)", "scheme"),
        ("data:text/html,hi", "scheme"),
        ("file:///etc/passwd", "scheme"),
    ],
)
def test_redirects_a_client_may_not_register_and_why(uri: str, says: str) -> None:
    problem = signin.redirect_problem(uri)
    assert problem is not None
    assert says in problem


def test_an_access_token_is_never_taken_for_a_gptproto_key() -> None:
    assert bearer_key({"authorization": "Bearer sma_abc"}) is None
    assert bearer_key({"authorization": "Bearer gp-key"}) == "gp-key"


def test_sign_in_needs_team_mode_and_a_public_https_address() -> None:
    with pytest.raises(ConfigurationError, match="SUNO_MCP_KEYS=per-request"):
        load_settings({"SUNO_MCP_AUTH": "oauth", "SUNO_MCP_PUBLIC_URL": "https://a.example"})
    with pytest.raises(ConfigurationError, match="SUNO_MCP_PUBLIC_URL"):
        load_settings({**TEAM, "SUNO_MCP_AUTH": "oauth"})
    with pytest.raises(ConfigurationError, match="https"):
        load_settings({**TEAM, "SUNO_MCP_AUTH": "oauth", "SUNO_MCP_PUBLIC_URL": "http://suno.example.com"})
    with pytest.raises(ConfigurationError, match="SUNO_MCP_AUTH_SECRET"):
        load_settings(
            {
                **TEAM,
                "SUNO_MCP_AUTH": "oauth",
                "SUNO_MCP_PUBLIC_URL": "https://a.example",
                "SUNO_MCP_AUTH_SECRET": "short",
            }
        )
    with pytest.raises(ConfigurationError, match="SUNO_MCP_AUTH"):
        load_settings({**TEAM, "SUNO_MCP_AUTH": "password"})
    both = load_settings(
        {**TEAM, "SUNO_MCP_AUTH": "OAuth, key", "SUNO_MCP_PUBLIC_URL": "https://a.example/mcp/"}
    )
    assert both.oauth
    assert both.bearer_keys
    assert both.public_url == "https://a.example"
    assert not load_settings(TEAM).oauth
    assert load_settings(TEAM).bearer_keys
