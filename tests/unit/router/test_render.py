"""The router template and its settings, rendered as text (no I/O but reading
the packaged template)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from nginx_lua.render import RouterSettings, render_config

PREFIX = Path("/srv/router")
KEYS = Path("/etc/streamfleet/router-keys.json")


def settings(**overrides: object) -> RouterSettings:
    return RouterSettings.model_validate({"key_file": KEYS, **overrides})


def test_every_placeholder_is_filled() -> None:
    conf = render_config(PREFIX, settings(test_endpoints=True))
    assert "{{" not in conf and "}}" not in conf


def test_region_values_land_where_nginx_and_lua_read_them() -> None:
    conf = render_config(
        PREFIX,
        settings(region="us-west-2", region_cidr="127.14.0.0/16", agent_port=9700,
                 listen="127.0.0.1:8014"),
    )  # fmt: skip
    assert 'region_cidr = "127.14.0.0/16"' in conf
    assert f'key_file = "{KEYS}"' in conf
    assert "listen 127.0.0.1:8014;" in conf
    assert conf.count("proxy_pass http://$sf_ip:9700$sf_upstream_uri;") == 2
    assert '"region":"us-west-2"' in conf
    assert f"pid {PREFIX}/nginx.pid;" in conf
    for temp in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        assert f"{temp}_temp_path {PREFIX}/tmp/{temp};" in conf


def test_test_endpoint_is_off_by_default() -> None:
    assert "/_test/verify" not in render_config(PREFIX, settings())
    assert '"streamfleet.testapi"' not in render_config(PREFIX, settings())
    on = render_config(PREFIX, settings(test_endpoints=True))
    assert "location = /_test/verify" in on and '"streamfleet.testapi"' in on


def test_access_log_format_never_names_the_token_carriers() -> None:
    conf = render_config(PREFIX, settings())
    log_format = re.search(r"log_format sf_json.*?;\n", conf, re.S)
    assert log_format is not None
    for leaky in ("$request ", "$request\"", "$request_uri", "$args", "$query_string",
                  "$http_referer", "$http_cookie", "$sf_token"):  # fmt: skip
        assert leaky not in log_format.group(0)
    assert "$sf_session" in log_format.group(0)


def test_websockets_get_the_long_read_timeout() -> None:
    conf = render_config(PREFIX, settings(websocket_read_timeout="2h"))
    ws = conf[conf.index("location @sf_websocket") :]
    assert "proxy_read_timeout 2h;" in ws[: ws.index("}")]


@pytest.mark.parametrize(
    "bad",
    [
        {"region_cidr": "127.11.0.5/16"},  # host bits set
        {"region_cidr": "::1/128"},
        {"listen": "localhost:8000"},
        {"listen": "127.0.0.1"},
        {"agent_port": 0},
        {"websocket_read_timeout": "1h; evil"},
        {"client_max_body_size": "1m;"},
        {"worker_processes": "auto; user root"},
        {"region": "EU Central"},
        {"listen_options": "; include /etc/passwd"},
    ],
)
def test_settings_refuse_values_that_would_break_or_inject_config(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        settings(**bad)


def test_paths_with_config_syntax_are_refused() -> None:
    with pytest.raises(ValueError, match="unsupported character"):
        render_config(PREFIX, settings(key_file=Path('/tmp/k";os.exit()--.json')))
