"""The page tests' stacks and browser, shared by the package: the fast stack (model latency 0.3 s), a slow one (5 s)
for what needs a job still running when the page looks, one Chromium, and a fresh page per test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from local_stack.config import StackEndpoints
from tests.local.page.support import CHROMIUM_FLAGS, SLOW_LATENCY_MS, chromium, local_stack, open_page


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackEndpoints]:
    with local_stack(tmp_path_factory.mktemp("page-stack"), latency_ms=300) as endpoints:
        yield endpoints


@pytest.fixture(scope="package")
def slow_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackEndpoints]:
    with local_stack(tmp_path_factory.mktemp("page-slow-stack"), latency_ms=SLOW_LATENCY_MS) as endpoints:
        yield endpoints


@pytest.fixture(scope="package")
def browser(stack: StackEndpoints) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium(), args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any, stack: StackEndpoints) -> Iterator[Any]:
    with open_page(browser, stack) as opened:
        yield opened


@pytest.fixture
def slow_page(browser: Any, slow_stack: StackEndpoints) -> Iterator[Any]:
    with open_page(browser, slow_stack) as opened:
        yield opened
