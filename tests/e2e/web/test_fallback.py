"""Regional fallback: with eu-central-1 at zero capacity, Frankfurt lands in eu-west-1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import BrowserContext

from tests.e2e.web.conftest import Configurator, Stack, start_stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from start_stack(
        tmp_path_factory, "up-fallback",
        "--regions", "eu-central-1,eu-west-1",
        "--pool-size", "eu-central-1=0", "--pool-size", "eu-west-1=1",
        "--demo-visit-from",
    )  # fmt: skip


def test_frankfurt_falls_back_to_eu_west_1(stack: Stack, context: BrowserContext) -> None:
    assert stack.instances("eu-central-1") == []
    page = Configurator.open(context, stack, visit_from="frankfurt")
    page.start()
    page.wait_streaming()
    assert page.region() == "eu-west-1"
    page.leave()
    assert page.errors == []
