"""The filter box on long combo menus, in a real browser: typing narrows the choices, Enter picks the first
one still shown, Escape closes the menu; short menus get no box. The matching rule runs as the app runs it."""

from __future__ import annotations

import pytest

from nodes.sampling import sampler_choices

from .canvas_driver import CanvasPage

pytestmark = pytest.mark.browser

SHOWN_ENTRIES = ".litecontextmenu .litemenu-entry:not(.ll-filtered-out)"


def open_combo(canvas: CanvasPage, node_id: int, name: str) -> None:
    """Clicks the middle of a combo widget: its menu of choices opens."""
    canvas.click(canvas.widget_point(node_id, name))
    canvas.page.locator(".litecontextmenu").wait_for()


def shown_entries(canvas: CanvasPage) -> list[str]:
    return canvas.page.locator(SHOWN_ENTRIES).all_inner_texts()


def test_typing_narrows_the_sampler_menu_and_enter_picks_the_first_match(canvas, artifacts):
    sampler = canvas.add_node("KSampler", (80, 60))
    open_combo(canvas, sampler, "sampler_name")
    box = canvas.page.locator(".ll-combo-filter")
    assert box.evaluate("(input) => input === document.activeElement")  # type straight away
    assert shown_entries(canvas) == list(sampler_choices())

    canvas.page.keyboard.type("2m")
    expected = [name for name in sampler_choices() if "2m" in name]
    assert len(expected) >= 2
    assert shown_entries(canvas) == expected
    canvas.screenshot(artifacts / "17-combo-filter.png")
    canvas.page.keyboard.press("Enter")
    assert canvas.page.locator(".litecontextmenu").count() == 0
    assert canvas.widget_value(sampler, "sampler_name") == expected[0]


def test_filter_terms_all_match_and_escape_closes_without_a_change(canvas):
    sampler = canvas.add_node("KSampler", (80, 60))
    before = canvas.widget_value(sampler, "sampler_name")
    open_combo(canvas, sampler, "sampler_name")
    canvas.page.keyboard.type("SDE gpu 3m")
    assert shown_entries(canvas) == ["dpmpp_3m_sde_gpu"]
    canvas.page.keyboard.press("Escape")
    assert canvas.page.locator(".litecontextmenu").count() == 0
    assert canvas.widget_value(sampler, "sampler_name") == before
    assert canvas.nodes()[0]["type"] == "KSampler"  # the keys stayed in the box: no canvas shortcut ran


def test_a_click_on_a_filtered_entry_picks_it(canvas):
    sampler = canvas.add_node("KSampler", (80, 60))
    open_combo(canvas, sampler, "scheduler")
    canvas.page.keyboard.type("kar")
    canvas.page.locator(SHOWN_ENTRIES).first.click()
    assert canvas.widget_value(sampler, "scheduler") == "karras"


def test_short_menus_have_no_filter_box(canvas):
    node = canvas.add_node("TestSolidColor", (80, 60))
    open_combo(canvas, node, "pattern")
    assert canvas.page.locator(".ll-combo-filter").count() == 0
    canvas.menu_entry("plain").click()
    assert canvas.widget_value(node, "pattern") == "plain"


def test_matching_is_case_blind_and_needs_every_term(canvas):
    result = canvas.js("""async () => {
      const m = await import('/app/combo-filter.js');
      const names = ['dpmpp_2m', 'DPMPP_2M_SDE', 'euler', 'sub/dir/v1-5.safetensors'];
      return [m.filterChoices(names, '2m'), m.filterChoices(names, 'sde 2M'), m.filterChoices(names, '  '),
              m.filterChoices(names, 'dir v1'), m.matchesFilter('euler', 'x')];
    }""")
    assert result == [
        ["dpmpp_2m", "DPMPP_2M_SDE"],
        ["DPMPP_2M_SDE"],
        ["dpmpp_2m", "DPMPP_2M_SDE", "euler", "sub/dir/v1-5.safetensors"],
        ["sub/dir/v1-5.safetensors"],
        False,
    ]
