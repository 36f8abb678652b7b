"""Text from files (a checkpoint's model and dataset names, a picture's file name) shown as text, never as markup."""
from __future__ import annotations

import html
import re
import string

# CommonMark lets a backslash escape any ASCII punctuation; Streamlit's extras (:emoji:, :material/icon:, $math$,
# :red[colour]) are all punctuation-led, so escaping every one of them leaves nothing to interpret.
_PUNCTUATION = re.compile("([" + re.escape(string.punctuation) + "])")
# GitHub-flavoured Markdown also turns bare "http://...", "www...." and "a@b.c" into links, escapes or not: an
# invisible word joiner (U+2060) inside each trigger breaks the pattern and leaves the text looking the same.
_AUTOLINK = re.compile(r"(?i)(?<=[hfw])(?=ttps?:|tp:|ww\.)|(?<=@)")
JOINER = "\u2060"


def plain(text: str) -> str:
    """`text` escaped for st.markdown, st.caption, st.success and widget labels: it renders as typed."""
    text = _AUTOLINK.sub(JOINER, " ".join(str(text).split()))
    return _PUNCTUATION.sub(r"\\\1", text)


def plain_html(text: str) -> str:
    """`text` for Plotly titles and legends, which read a subset of HTML (<a href>, <b>, <br>)."""
    return html.escape(str(text), quote=True)
