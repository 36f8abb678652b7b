"""Bits every page repeats: the legacy-router guard, URL-backed settings, the model picker, image grids."""
from __future__ import annotations

import runpy
from dataclasses import dataclass
from typing import Any, Callable

import streamlit as st
import torch

from aecore.data import dataset_status
from aecore.datasets import DATASETS
from aecore.noise import Noise
from aecore.viz import scale_for, to_uint8_image
from ui import session
from ui.config import ROOT
from ui.state import ModelEntry, all_models, dataset
from ui.text import plain

APP_PATH = ROOT / "app.py"


def require_app_frame() -> None:
    """On a fresh server (and in every AppTest run) a deep link is first routed by Streamlit's legacy pages/
    mechanism, which would run this page alone: no navigation, no sidebar. Instead run app.py right here, whose
    st.navigation resolves the same URL to this page inside the app's frame, then end the legacy run. Running
    it inline rather than calling st.rerun() keeps the widget events of this run (a click is not lost)."""
    router = legacy_router()
    if router is not None and router.uses_pages_directory:
        router.uses_pages_directory = False  # what st.navigation itself sets once it has run
        runpy.run_path(str(APP_PATH), run_name="__main__")
        st.stop()


LEGACY_ROUTER_STREAMLIT = ((1, 36), (2, 0))  # versions whose PagesManager keeps this flag (1.36 ... 1.67 read)


def legacy_router():
    """The one private Streamlit use in the app: PagesManager's class-level `uses_pages_directory` flag. Returned
    only on a Streamlit version and shape this was written for; otherwise None, and a deep link on a fresh server
    shows the page without the app's navigation (the public behaviour) instead of breaking."""
    version = tuple(int(part) for part in st.__version__.split(".")[:2] if part.isdigit())
    if not LEGACY_ROUTER_STREAMLIT[0] <= version < LEGACY_ROUTER_STREAMLIT[1]:
        return None
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:
        return None
    flag = PagesManager.__dict__.get("uses_pages_directory", "absent")
    return PagesManager if flag is None or isinstance(flag, bool) else None


# --- settings kept in the URL so a link reproduces a view ----------------------------------------------


def url_value(name: str, default, choices=None, cast=str, bounds: tuple | None = None):
    """A setting's initial value from the query string. A link is untrusted text: a value that is absent, does not
    parse, is not one of `choices` or lies outside `bounds` (lo, hi), the widget's own range, gives `default`."""
    raw = st.query_params.get(name)
    if raw is None:
        return default
    try:
        value = cast(raw)
    except (TypeError, ValueError, OverflowError):
        return default
    if choices is not None and value not in choices:
        return default
    if bounds is not None and not (bounds[0] <= value <= bounds[1]):  # also false for NaN
        return default
    return value


@dataclass(frozen=True)
class UrlField:
    """A keyed widget's value kept in the URL as `name` (see seed_widgets)."""

    name: str
    default: Any
    cast: Callable = str
    choices: tuple | None = None
    bounds: tuple | None = None

    def text(self, value) -> str:
        return ("1" if value else "0") if isinstance(value, bool) else f"{value:g}" if isinstance(value, float) \
            else str(value)


def flag(text: str) -> bool:
    """A toggle's value in a URL: '1' or '0'."""
    if text not in ("0", "1"):
        raise ValueError(text)
    return text == "1"


def seed_widgets(fields: dict[str, UrlField]) -> None:
    """Before keyed widgets are drawn: each one this session has not drawn yet starts from the link (checked like
    url_value), else from its default. The widgets then take no value argument: their key holds it."""
    for key, f in fields.items():
        if key not in st.session_state:
            st.session_state[key] = url_value(f.name, f.default, f.choices, f.cast, f.bounds)


def widgets_to_url(fields: dict[str, UrlField]) -> None:
    """After the widgets are drawn: their values into the URL, so a link reproduces the view."""
    set_url(**{f.name: f.text(st.session_state[key]) for key, f in fields.items() if key in st.session_state})


def settings_reader(from_link: bool):
    """`url_value` while the page's settings may come from the link, else a reader that returns each default: after
    the visitor switches models, the URL holds what the previous model's view wrote, not a link for this one."""
    return url_value if from_link else (lambda name, default, *args, **kwargs: default)


def model_changed(page: str, key: str) -> bool:
    """True when `page` last showed another model in this session (its per-model settings start from defaults)."""
    shown = session.page_models.get()
    before, shown[page] = shown.get(page), key
    return before is not None and before != key


def url_noise(name: str, default: str, max_level: float) -> Noise:
    """A noise setting from the URL ('gaussian:0.3'), within the level slider's range, else `default`."""
    try:
        noise = Noise.parse(st.query_params.get(name, default))
    except ValueError:
        noise = None
    if noise is None or noise.level > max_level:
        noise = Noise.parse(default)
    return Noise(noise.kind, min(noise.level, max_level))


def set_url(**values) -> None:
    for k, v in values.items():
        if v is None:
            st.query_params.pop(k, None)
        elif st.query_params.get(k) != str(v):
            st.query_params[k] = str(v)


def sections(key: str, parts) -> int | None:
    """A page of numbered sections (the Labs, Inside) as tabs: (tab label, title, draw) triples. Only the open tab
    runs and is drawn (the Checkerboard Lab's seven plotly charts cost the browser ~1 s of a 1.7-1.9 s visit when all
    four sections were drawn at once), and the open tab is in the URL as `key`, so a link opens any section.
    Returns the open section's number (None if the tabs do not track state and all ran)."""
    labels = [f"{number}. {label}" for number, (label, _, _) in enumerate(parts, start=1)]
    shown = None
    for number, (tab, (_, title, draw)) in enumerate(zip(st.tabs(labels, key=key, bind="query-params"), parts), 1):
        if tab.open is False:  # None would mean the tabs do not track state: then every section runs, as before
            continue
        shown = number if tab.open else None
        with tab:
            st.header(f"{number} · {title}", divider="gray")
            draw()
    return shown


# --- model picker -------------------------------------------------------------------------------------


LABEL_FITS = 30  # characters of a model's name that the sidebar's select box shows uncut (1280 px window)


def model_picker(where=st.sidebar, default: str | None = None) -> ModelEntry | None:
    """Shipped checkpoints and this visitor's trained models; the choice is shared by pages and the URL. `default`:
    the page's own first choice, when neither this visitor nor the link has chosen one."""
    models = all_models()
    if not models:
        where.info("No model yet. Train one on the **Train** page (under a minute on the bundled digits).")
        return None
    keys = list(models)
    linked = st.query_params.get("model")
    if linked is not None and linked not in keys and session.picked_model.get() is None:
        where.warning(f"The link names a model that is not here ({plain(linked[:60])}): a model trained in another "
                      "session lives only there. Showing another one.", icon=":material/link_off:")
    wanted = linked if linked in keys else session.picked_model.get() or default  # a link names a model: it wins
    # the box's own state, where it has one, decides; an index as well would be a second, conflicting default
    index = 0 if session.model_box.get() in keys else keys.index(wanted) if wanted in keys else 0
    key = where.selectbox("Model", keys, index=index, format_func=lambda k: models[k].label, key=session.model_box.key,
                          help="Shipped models and the ones you trained in this session.")  # keyed: its index
    # follows the choice, and an unkeyed box whose index changed would be a new widget that forgets the click
    if len(models[key].label) > LABEL_FITS:  # the sidebar's box cuts longer names off: say it in full below
        where.caption(plain(models[key].label))
    session.picked_model.set(key)
    set_url(model=key)
    return models[key]


def picked_model_and_data(default: str | None = None):
    """The picked model and its dataset; when there is none (or the data cannot be had), say what to do and stop."""
    entry = model_picker(default=default)
    if entry is None:
        st.info("Train a model first, or load a checkpoint file from the sidebar.")
        st.page_link("pages/train.py", label="Go to Train", icon=":material/model_training:")
        st.stop()
    if entry.source == "uploaded" and not _may_fetch(entry.checkpoint.dataset):
        st.stop()
    data = dataset(entry.checkpoint.dataset)
    if data is None:
        st.stop()
    return entry, data


def _may_fetch(name: str) -> bool:
    """An uploaded file names its dataset: download it only when the visitor asks, never because a file said so."""
    if name not in DATASETS:
        st.error(f"This checkpoint was trained on a dataset this app does not know: {plain(name)}. "
                 f"Known: {', '.join(DATASETS)}.", icon=":material/help:")
        return False
    if dataset_status(name) != "needs download" or session.download_allowed(name).get():
        return True
    st.info(f"This checkpoint was trained on **{DATASETS[name].title}**, which this server has not downloaded yet. "
            f"{DATASETS[name].description}", icon=":material/cloud_download:")
    if st.button(f"Download {DATASETS[name].title} and continue"):
        session.download_allowed(name).set(True)
        return True
    return False


# --- pictures -----------------------------------------------------------------------------------------


def image_grid(images: torch.Tensor, nrow: int = 8, caption: str | None = None, target: int = 84,
               where=st) -> None:
    """Crisp grid: integer nearest-neighbour upscaling, so 28x28 digits are not blurred by the browser."""
    if len(images) == 0:
        return
    scale = scale_for(images.shape[-2], target)
    where.image(to_uint8_image(images, nrow=nrow, scale=scale), caption=caption, clamp=True)


def image_rows(rows: dict[str, torch.Tensor], target: int = 70) -> None:
    """Labelled rows of images with the same column count: e.g. original / noisy / reconstruction."""
    for label, imgs in rows.items():
        left, right = st.columns([1.5, 6.5], vertical_alignment="center")
        left.markdown(f"**{plain(label)}**")
        image_grid(imgs, nrow=len(imgs), target=target, where=right)


def fmt_seconds(s: float) -> str:
    if s != s or s == float("inf"):
        return "–"
    return f"{s:.0f} s" if s < 90 else f"{s / 60:.1f} min"
