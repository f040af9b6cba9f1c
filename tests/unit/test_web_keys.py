"""Access settings: where the web server listens, and what a bad configuration is told."""

from __future__ import annotations

import pytest

from sla_stream.settings import Settings
from sla_stream.web.access import Keys, bind_host, is_loopback
from sla_stream.web.auth import hash_token

HASH = hash_token("viewer")
SECRET = "a-secret-the-workers-share"


@pytest.mark.parametrize(
    ("host", "viewers", "bound"),
    [
        ("0.0.0.0", [], "127.0.0.1"),
        ("::", [], "127.0.0.1"),
        ("10.0.0.7", [], "127.0.0.1"),
        ("worker-1.example", [], "127.0.0.1"),
        ("127.0.0.1", [], "127.0.0.1"),
        ("::1", [], "::1"),
        ("localhost", [], "localhost"),
        ("0.0.0.0", [HASH], "0.0.0.0"),
        ("10.0.0.7", [HASH], "10.0.0.7"),
    ],
)
def test_without_viewer_tokens_the_server_binds_loopback_only(
    host: str, viewers: list[str], bound: str
) -> None:
    settings = Settings(web_host=host, viewer_token_hashes=viewers, cluster_secret=SECRET)
    assert bind_host(settings) == bound
    assert is_loopback(bound) or viewers


def test_viewer_tokens_need_a_cluster_secret() -> None:
    with pytest.raises(ValueError, match="set SLA_CLUSTER_SECRET too"):
        Keys.from_settings(Settings(viewer_token_hashes=[HASH]))
    keys = Keys.from_settings(Settings(viewer_token_hashes=[HASH], cluster_secret=SECRET))
    assert len(keys.viewer) == 1 and keys.cluster_headers == {"X-SLA-Cluster-Secret": SECRET}


def test_errors_name_the_variable_never_the_value() -> None:
    short = "tiny-secret"
    with pytest.raises(ValueError, match="SLA_CLUSTER_SECRET has fewer than 16") as caught:
        Keys.from_settings(Settings(cluster_secret=short))
    assert short not in str(caught.value)
    token_in_clear = "my-clear-viewer-token"
    with pytest.raises(ValueError, match="SLA_VIEWER_TOKEN_HASHES: token hash entry 2") as caught:
        Keys.from_settings(
            Settings(viewer_token_hashes=f"{HASH},{token_in_clear}", cluster_secret=SECRET)
        )
    assert token_in_clear not in str(caught.value)
    with pytest.raises(ValueError, match=r"SLA_PORTAL_TOKEN_HASHES: .*name the customer"):
        Keys.from_settings(Settings(portal_token_hashes=[HASH]))


def test_no_secret_means_no_header_and_loopback_membership() -> None:
    keys = Keys.from_settings(Settings())
    assert keys.cluster_headers == {} and not keys.viewer
    assert "cluster_secret" not in repr(Keys.from_settings(Settings(cluster_secret=SECRET)))
