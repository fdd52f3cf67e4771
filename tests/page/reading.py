"""Reading the page in the browser tests: the screens it is read on, a chart's bars, a
card's figure."""

LAPTOP = {"width": 1280, "height": 900}
WIDE = {"width": 1440, "height": 900}
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2}  # context options


def bars(page, chart: str) -> int:
    """The bars a chart drew: the rects of its bar mark."""
    return page.locator(f'g[data-mark="{chart}"] rect').count()


def card(page, section: str, label: str):
    return page.locator(f"#section-{section} .card", has_text=label).locator(".card-value")
