"""Playwright's sync API for the browser test modules that call it directly (``sync_api.expect``, its
``TimeoutError``): importing it skips the importing module, with the reason, on a machine without Playwright (the dev
extra). The ``browser`` fixture (conftest.py) asks for Playwright and Debian's Chromium itself.
"""

from __future__ import annotations

import pytest

from process_helpers import NO_PLAYWRIGHT

sync_api = pytest.importorskip("playwright.sync_api", reason=NO_PLAYWRIGHT)

__all__ = ["sync_api"]
