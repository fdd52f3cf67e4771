"""Reading the page in the browser tests: a chart's bars, a card's figure."""


def bars(page, chart: str) -> int:
    """The bars a chart drew: the rects of its bar mark."""
    return page.locator(f'g[aria-description="{chart}"] rect').count()


def card(page, section: str, label: str):
    return page.locator(f"#section-{section} .card", has_text=label).locator(".card-value")
