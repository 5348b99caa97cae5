"""Page parse speed: ``parsing.tme.parse_page`` against snscrape's telegram module on the same saved HTML, offline.

Pages: the saved t.me pages in ``../shared/fixtures/tme/*.html`` (when present) and the project's own
``tests/fixtures/tme/*.html``. For snscrape, the unit of work is exactly what its ``get_items`` does per fetched
page, minus the fetch: ``bs4.BeautifulSoup(html, "lxml")`` then ``TelegramChannelScraper._soup_to_items``.
Both run in the same process, alternating, ``--repeat`` times per page after a warm-up; the figure per page is
the median. Also checked per parser: posts whose text has ``<br>`` line breaks, and how many of them come out
with the same number of lines (a reply's quoted text is not the post: the line count is taken from the post's
own ``js-message_text``).

snscrape is a benchmark-only dependency (``pip install snscrape``); without it only ours is measured.
Run: ``.venv/bin/python -m benchmarks.page_parse [--repeat N]``.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import re
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import lxml.html

from parsing.tme import parse_page

REPO = Path(__file__).resolve().parents[1]
SHARED_PAGES = REPO.parent / "shared" / "fixtures" / "tme"
OWN_PAGES = REPO / "tests" / "fixtures" / "tme"
_SPACES = re.compile(r"[ \t\r\n\f\v\u00a0]+")


def pages() -> list[Path]:
    found = sorted(SHARED_PAGES.glob("*.html")) if SHARED_PAGES.is_dir() else []
    return found + sorted(OWN_PAGES.glob("*.html"))


def snscrape_parser() -> Callable[[str], list[Any]] | None:
    try:
        import bs4
        from snscrape.modules.telegram import TelegramChannelScraper
    except ImportError:
        return None
    logging.getLogger("snscrape").setLevel(logging.ERROR)  # "Possibly incorrect URL" on saved test pages
    scraper = TelegramChannelScraper("benchmark")

    def parse(html: str) -> list[Any]:
        soup = bs4.BeautifulSoup(html, "lxml")
        return list(scraper._soup_to_items(soup, "https://t.me/s/benchmark"))

    return parse


def _walk(node: Any, parts: list[str]) -> None:
    """Text in document order, ``<br>`` as a line break, source whitespace as one space."""
    if node.tag == "br":
        parts.append("\n")
    elif node.text:
        parts.append(_SPACES.sub(" ", node.text))
    for child in node:
        _walk(child, parts)
        if child.tail:
            parts.append(_SPACES.sub(" ", child.tail))


def expected_lines(html: str) -> dict[int, int]:
    """Post id -> number of non-empty lines its own text has, for posts whose text holds a ``<br>``."""
    root = lxml.html.document_fromstring(html)
    lines: dict[int, int] = {}
    for message in root.xpath("//div[@data-post and contains(@class, 'tgme_widget_message')]"):
        texts = [div for div in message.xpath(".//div[contains(@class, 'js-message_text')]")
                 if not div.xpath("ancestor::a[contains(@class, 'tgme_widget_message_reply')]")]
        if not texts or not texts[0].xpath(".//br"):
            continue
        parts: list[str] = []
        _walk(texts[0], parts)
        post_id = int(str(message.get("data-post")).rsplit("/", 1)[1])
        lines[post_id] = len([line for line in "".join(parts).split("\n") if line.strip()])
    return lines


def _line_count(text: str | None) -> int:
    return len([line for line in (text or "").split("\n") if line.strip()])


def line_breaks_kept(html: str, snscrape: Callable[[str], list[Any]] | None) -> tuple[int, int, int | None]:
    """(posts with <br>, of them read with the right line count by ours, by snscrape)."""
    want = expected_lines(html)
    ours = {post.message_id: _line_count(post.text) for post in parse_page(html)}
    ours_kept = sum(ours.get(post_id) == count for post_id, count in want.items())
    theirs_kept = None
    if snscrape is not None:
        theirs = {int(item.url.rsplit("/", 1)[1]): _line_count(item.content) for item in snscrape(html)}
        theirs_kept = sum(theirs.get(post_id) == count for post_id, count in want.items())
    return len(want), ours_kept, theirs_kept


def _time_ms(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args(argv)
    snscrape = snscrape_parser()
    if snscrape is None:
        print("snscrape is not installed (pip install snscrape): measuring ours only", file=sys.stderr)
    print(f"machine: {os.cpu_count()} CPUs, Python {platform.python_version()} ({platform.python_implementation()}), "
          f"{platform.system()} {platform.machine()}; repeat {args.repeat}")
    print("| page | KiB | posts ours / snscrape | ours median ms | snscrape median ms | snscrape / ours "
          "| `<br>` posts: lines kept ours / snscrape |")
    print("|---|---|---|---|---|---|---|")
    ours_all: list[float] = []
    theirs_all: list[float] = []
    ratios: list[float] = []
    for path in pages():
        html = path.read_text(encoding="utf-8")
        count_ours = len(parse_page(html))
        count_theirs = len(snscrape(html)) if snscrape else None
        ours_ms: list[float] = []
        theirs_ms: list[float] = []
        for _ in range(args.repeat):
            ours_ms.append(_time_ms(lambda html=html: parse_page(html)))
            if snscrape is not None:
                theirs_ms.append(_time_ms(lambda html=html: snscrape(html)))
        ours_median = statistics.median(ours_ms)
        ours_all.append(ours_median)
        with_br, ours_kept, theirs_kept = line_breaks_kept(html, snscrape)
        if snscrape is not None:
            theirs_median = statistics.median(theirs_ms)
            theirs_all.append(theirs_median)
            ratios.append(theirs_median / ours_median)
            theirs_cells = f"{theirs_median:.2f} | {theirs_median / ours_median:.1f}x"
        else:
            theirs_cells = "– | –"
        print(f"| {path.name} | {len(html.encode()) / 1024:.0f} | {count_ours} / {count_theirs if snscrape else '–'} "
              f"| {ours_median:.2f} | {theirs_cells} | {with_br}: {ours_kept} / "
              f"{theirs_kept if theirs_kept is not None else '–'} |")
    summary = f"median per page: ours {statistics.median(ours_all):.2f} ms"
    if ratios:
        summary += (f", snscrape {statistics.median(theirs_all):.2f} ms; ratio snscrape/ours per page: "
                    f"min {min(ratios):.1f}x, median {statistics.median(ratios):.1f}x, "
                    f"geometric mean {statistics.geometric_mean(ratios):.1f}x")
    print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
