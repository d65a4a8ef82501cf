"""A person opens the app in Chromium and visits every tab."""
from __future__ import annotations

import pytest
from conftest import open_tab, screenshot

from playground import labs

pytestmark = pytest.mark.browser


def test_visit_every_tab(page):
    """Every tab opens with content and without a script error in the page."""
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    for lab in labs.LABS:
        open_tab(page, lab.title)
        panel = page.locator(f"#tab-{lab.key}")
        panel.wait_for(state="visible")
        assert len(panel.inner_text()) > 40, f"{lab.title} tab is nearly empty"
        screenshot(page, f"tab-{lab.key}")
    assert not errors, errors


def test_home_echo_and_machine_facts(page):
    open_tab(page, "Home")
    page.locator("#home-machine").get_by_text("This machine", exact=True).click()
    page.locator("#home-machine").get_by_text("Device").wait_for()
    box = page.locator("#echo-in textarea, #echo-in input").first
    box.fill("hello projector")
    box.press("Enter")
    page.wait_for_function("() => document.querySelector('#echo-out textarea, #echo-out input').value === 'hello projector'",
                           timeout=120_000)        # behind the other labs' first results on a busy machine
    page.get_by_text("Round trip:").wait_for()
    screenshot(page, "home-echo")
