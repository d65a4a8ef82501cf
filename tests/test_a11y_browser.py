"""Accessibility, checked by axe-core (the npm package, pinned in tests/package.json) injected into
every tab in Chromium: no serious or critical violation of its default rule set (WCAG 2.x A/AA and
best practices), after each tab has shown its first result."""
from __future__ import annotations

import pytest
from conftest import axe_serious, open_tab

from playground import labs
from playground.core import settings

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_no_serious_or_critical_violation_on_any_tab(page):
    found = {}
    served = settings.from_env().tabs                    # what the app fixture serves (PLAYGROUND_TABS)
    for lab in [lab for lab in labs.LABS if lab.key in served]:
        open_tab(page, lab.title)
        page.locator(f"#tab-{lab.key}").wait_for(state="visible")
        page.wait_for_timeout(1500)                      # the tab's first result starts...
        violations = axe_serious(page)                   # ...and ends
        if violations:
            found[lab.key] = violations
    assert not found, found
