"""AppTest helpers the page tests share: arriving on a page by a link, opening its section tabs, and reading the URL
back."""
import re

from streamlit.testing.v1 import AppTest

APP = "../app.py"  # AppTest resolves relative paths against the calling file, which lives beside this one


def follow_link(at: AppTest, page: str, link: dict) -> AppTest:
    """This session arrives on `page` by a URL carrying `link` as its query string."""
    for k, v in link.items():
        at.query_params[k] = v
    at.switch_page(page)
    at.run()
    return at


def open_link(page: str, link: dict, timeout: int = 120) -> AppTest:
    """A fresh session that arrives on `page` by a link."""
    return follow_link(AppTest.from_file(APP, default_timeout=timeout), page, link)


def query(at: AppTest, key: str):
    """A query parameter as the page left it (None when absent)."""
    value = at.query_params.get(key)
    return value[0] if isinstance(value, list) else value


def open_tab(at: AppTest, key: str, label: str) -> AppTest:
    """Switch the page's section tabs (ui.widgets.sections, bound to the URL as `key`) to `label`, as a click does."""
    at.session_state[key] = label
    at.run()
    return at


SECTION_KEYS = {"pages/checkerboard.py": "cbtab", "pages/evaluation.py": "evtab", "pages/inside.py": "intab"}


def each_section(at: AppTest, page: str):
    """Open each section tab of `page` in turn (yields the section's number); a page without tabs is yielded once."""
    labels = [t.label for t in at.tabs if re.match(r"\d+\. ", t.label)]
    if page not in SECTION_KEYS or not labels:
        yield 0
        return
    for number, label in enumerate(labels, start=1):
        open_tab(at, SECTION_KEYS[page], label)
        yield number
