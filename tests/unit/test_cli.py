"""The `streamfleet` command line: version, per-command help, missing role extras."""

from __future__ import annotations

import importlib.metadata

import pytest

from streamfleet import __version__
from streamfleet.cli import COMMANDS, main, missing_dependency


def test_version_is_the_installed_metadata(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert (
        capsys.readouterr().out.strip()
        == f"streamfleet {importlib.metadata.version('streamfleet')}"
    )
    assert importlib.metadata.version("streamfleet") == __version__


def test_pool_manager_help_lists_every_setting(capsys: pytest.CaptureFixture[str]) -> None:
    from regional_stack.pool.settings import PoolSettings

    with pytest.raises(SystemExit):
        main(["pool-manager", "--help"])
    out = capsys.readouterr().out
    for name in PoolSettings.model_fields:
        assert f"STREAMFLEET_POOL_{name.upper()} " in out
    assert "STREAMFLEET_POOL_ADMIN_TOKEN" in out and "(secret)" in out


def test_a_missing_role_dependency_names_the_extra(capsys: pytest.CaptureFixture[str]) -> None:
    up = next(c for c in COMMANDS if c.name == "up")
    code = missing_dependency(up, ModuleNotFoundError("no module", name="mmdb_writer"))
    assert code == 2
    err = capsys.readouterr().err
    assert "'mmdb_writer'" in err and "pip install 'streamfleet[local]'" in err


def test_a_missing_module_of_our_own_is_a_bug_and_raises() -> None:
    up = next(c for c in COMMANDS if c.name == "up")
    with pytest.raises(ModuleNotFoundError):
        missing_dependency(up, ModuleNotFoundError("no module", name="control_plane.gone"))


def test_every_command_names_an_extra_that_exists() -> None:
    extras = set(importlib.metadata.metadata("streamfleet").get_all("Provides-Extra") or [])
    for command in COMMANDS:
        assert command.extra == "" or command.extra in extras, command
