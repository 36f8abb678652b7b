"""AppTest helpers the page tests share: arriving on a page by a link, and reading the URL back."""
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
