"""The accessibility audit's own prerequisite: axe-core vendored from npm at install time."""

from __future__ import annotations

import pytest

from tests.browser.conftest import AXE_PATH, REQUIRED, axe_source


def test_axe_core_is_vendored():
    """The accessibility audit needs axe-core; without it the journeys run unaudited."""
    if axe_source() is None:
        message = f"{AXE_PATH} is missing (make tests/browser/vendor/axe.min.js needs npm)"
        if REQUIRED:
            pytest.fail(f"REQUIRE_BROWSER=1 but {message}", pytrace=False)
        pytest.skip(f"accessibility audit skipped: {message}")
    assert "axe" in axe_source()[:200]
