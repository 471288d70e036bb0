"""The browser tests' shared Chromium: one per test module, started by Playwright from Debian's package.

Every test asking for ``browser`` is skipped, with the reason, on a machine without Debian's Chromium at
/usr/bin/chromium (never one downloaded) or without Playwright (the dev extra) — decided at collection, before its
other fixtures start a server.
"""

from __future__ import annotations

from collections.abc import Iterator
from importlib.util import find_spec
from typing import Any

import pytest

from process_helpers import CHROMIUM, CHROMIUM_ARGS, NO_PLAYWRIGHT


def _missing() -> str | None:
    if not CHROMIUM.exists():
        return f"browser tests need Debian's chromium at {CHROMIUM}"
    if find_spec("playwright") is None:
        return NO_PLAYWRIGHT
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = _missing()
    if reason is None:
        return
    for item in items:
        if "browser" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from browser_helpers import sync_api

    with sync_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()
