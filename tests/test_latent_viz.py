import io

import numpy as np
import pytest
import torch
from PIL import Image

from aecore.imageio import ImageError, to_model_input
from aecore.latent import interpolate, manifold_grid, prior_samples, project
from aecore.models import ModelSpec, build_model
from aecore.train import History
from aecore.viz import latent_scatter, loss_curves, selected_indices, smooth, tile, to_uint8_image


def test_selection_maps_back_to_samples_in_every_form_streamlit_sends():
    labels = np.array([3, 1, 3, 1, 2])
    fig = latent_scatter(np.random.rand(5, 2), labels, "t", "x", "y")
    # one trace per label (1, 2, 3): point_index counts within a trace
    assert [list(t.customdata) for t in fig.data] == [[1, 3], [4], [0, 2]]
    points = [{"curve_number": 0, "point_index": 1, "customdata": {"0": 3}},
              {"curve_number": 2, "point_index": 0, "customdata": [0]},
              {"curve_number": 1, "point_index": 0, "customdata": 4},
              {"curve_number": 2, "point_index": 1}]  # no customdata: fall back to the trace's own
    assert selected_indices(points, fig) == [3, 0, 4, 2]
    assert selected_indices([], fig) == []


def test_scatter_and_curves_have_titles_and_axis_labels():
    fig = latent_scatter(np.random.rand(10, 2), np.arange(10) % 3, "Codes", "z0", "z1")
    assert fig.layout.title.text == "Codes" and fig.layout.xaxis.title.text == "z0"
    assert fig.layout.dragmode == "lasso" and all(t.type == "scatter" for t in fig.data)
    h = History(step=[1, 2, 3], step_loss=[3.0, 2.0, 1.0], epoch=[1], epoch_step=[3], test={"loss": [1.5]})
    curves = loss_curves(h)
    assert curves.layout.yaxis.title.text == "loss (nats per image)" and curves.layout.xaxis.title.text
    assert {t.name for t in curves.data} >= {"train (smoothed)", "test (per epoch)"}


def test_scatter_draws_svg_for_a_test_split_and_webgl_only_for_many_points():
    # a WebGL context costs a browser without a GPU ~0.35 s per chart: SVG for the few thousand codes pages show
    from aecore.viz import SVG_MAX_POINTS

    small = latent_scatter(np.random.rand(SVG_MAX_POINTS, 2), np.arange(SVG_MAX_POINTS) % 10, "t", "x", "y")
    large = latent_scatter(np.random.rand(SVG_MAX_POINTS + 1, 2), None, "t", "x", "y")
    assert {t.type for t in small.data} == {"scatter"} and {t.type for t in large.data} == {"scattergl"}
    assert SVG_MAX_POINTS >= 2000  # the t-SNE view shows up to 2,000 codes (ui/latentview.py)


def test_smoothing_is_bias_corrected():
    assert smooth([5.0, 5.0, 5.0]) == pytest.approx([5.0, 5.0, 5.0])


def test_image_grid_is_upscaled_with_nearest_neighbour():
    img = torch.zeros(2, 1, 4, 4)
    img[0, 0, 0, 0] = 1.0
    grid = to_uint8_image(img, nrow=2, scale=3, padding=0)
    assert grid.shape == (12, 24) and grid.dtype == np.uint8
    assert (grid[:3, :3] == 255).all() and grid[3, 3] == 0  # one pixel became a crisp 3x3 block


@pytest.mark.parametrize("n, channels, nrow, padding", [(1, 1, 8, 2), (2, 1, 8, 2), (7, 3, 3, 2), (8, 1, 8, 0),
                                                         (9, 1, 8, 2), (17, 3, 4, 1)])
def test_image_grid_is_laid_out_as_torchvision_lays_it(n, channels, nrow, padding):
    make_grid = pytest.importorskip("torchvision.utils").make_grid  # the reference the app no longer imports
    images = torch.rand(n, channels, 5, 6, generator=torch.Generator().manual_seed(n))
    ours = tile(images.numpy(), nrow=nrow, padding=padding, pad_value=1.0)
    theirs = make_grid(images, nrow=nrow, padding=padding, pad_value=1.0).numpy()
    assert ours.shape[1:] == theirs.shape[1:] and np.array_equal(ours, theirs[:channels])  # it makes greys RGB


def test_projections():
    codes = np.random.default_rng(0).normal(size=(60, 5)) * [5, 1, 0.1, 0.1, 0.1]
    p = project(codes, "pca")
    assert p.points.shape == (60, 2) and p.explained[0] > 0.8 and "variance" in p.axis_titles[0]
    assert project(codes, "dims", (2, 4)).axis_titles == ("z2", "z4")
    assert project(codes, "tsne").points.shape == (60, 2)
    assert project(codes[:, :2], "pca").method.startswith("dims")  # 2-D codes are shown as they are


def test_manifold_grid_spans_the_gaussian_quantiles():
    model = build_model(ModelSpec("mlp", (1, 8, 8), 2, True, hidden=(16,)))
    images, values = manifold_grid(model, 5)
    assert images.shape == (25, 1, 8, 8)
    assert values[2] == pytest.approx(0.0) and values[0] == pytest.approx(-values[-1]) and values[-1] < 2
    assert prior_samples(model, 6, seed=1).shape == (6, 1, 8, 8)
    assert torch.equal(prior_samples(model, 6, seed=1), prior_samples(model, 6, seed=1))


def test_interpolations_start_and_end_at_the_codes():
    z0, z1 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0])
    for method in ("linear", "slerp"):
        path = interpolate(z0, z1, 5, method)
        assert torch.allclose(path[0], z0, atol=1e-5) and torch.allclose(path[-1], z1, atol=1e-5)
    mid = interpolate(z0, torch.tensor([0.0, 1.0]), 3, "slerp")[1]
    assert mid.norm() == pytest.approx(1.0, abs=1e-5)  # slerp keeps the norm on the arc


def test_nearest_images_finds_exact_copies_across_pool_batches():
    from aecore.evaluation import nearest_with_shifts

    pool = torch.rand(50, 1, 6, 6)
    nb = nearest_with_shifts(pool[[7, 3, 49]], pool, max_shift=1, batch=16)
    assert nb.plain_index.tolist() == [7, 3, 49] and torch.allclose(nb.plain_distance, torch.zeros(3), atol=1e-3)
    assert nb.shifted_index.tolist() == [7, 3, 49] and nb.shift == [(0, 0)] * 3


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def test_uploaded_pictures_are_converted_to_the_model_input():
    paper = Image.new("RGB", (90, 60), (250, 250, 250))
    paper.paste((0, 0, 0), (40, 10, 50, 50))  # a dark stroke on light paper
    x = to_model_input(png_bytes(paper), (1, 28, 28))
    assert x.shape == (1, 28, 28) and 0 <= x.min() and x.max() <= 1
    assert x[0, 0, 0] < 0.1 and x.max() > 0.9  # inverted to light-on-dark like MNIST
    rgb = to_model_input(png_bytes(Image.new("RGB", (10, 10), (255, 0, 0))), (3, 32, 32))
    assert rgb.shape == (3, 32, 32) and rgb[0].mean() > 0.99 and rgb[1].mean() < 0.01
    with pytest.raises(ImageError, match="not a readable"):
        to_model_input(b"GIF89a broken", (1, 28, 28))


def test_visitors_of_a_shipped_model_share_one_t_sne_layout(monkeypatch):
    """t-SNE costs seconds: it is cached by the codes' values, so a second visitor's page reuses the first's layout."""
    import ui.latentview as lv
    from apptest import open_link

    calls = []
    real = lv.project
    monkeypatch.setattr(lv, "project", lambda *a, **k: calls.append(a[1]) or real(*a, **k))
    lv._project.clear()
    link = {"model": "shipped:conv_vae_z20", "proj": "tsne"}
    for _ in range(2):  # two sessions, as two browsers
        at = open_link("pages/latent.py", link)
        assert not at.exception, [e.value for e in at.exception]
    assert calls.count("tsne") == 1


def test_the_t_sne_layout_is_computed_in_the_background_while_pca_is_shown(monkeypatch):
    """The click on t-SNE finds the layout the PCA view started computing: no second t-SNE, no wait for one."""
    import ui.latentview as lv
    from apptest import open_link

    calls = []
    real = lv.project
    monkeypatch.setattr(lv, "project", lambda *a, **k: calls.append(a[1]) or real(*a, **k))
    lv._project.clear()
    lv._prefetched.clear()
    at = open_link("pages/latent.py", {"model": "shipped:conv_vae_z20", "proj": "pca"})
    assert not at.exception, [e.value for e in at.exception]
    assert calls[0] == "pca" and len(lv._prefetched) == 1  # (the background t-SNE may have begun)
    next(iter(lv._prefetched.values())).result(timeout=120)  # the background layout
    assert calls == ["pca", "tsne"]
    at.radio(key="proj_shipped:conv_vae_z20").set_value("tsne").run()
    assert not at.exception, [e.value for e in at.exception]
    assert calls == ["pca", "tsne"], "the page used the prefetched layout"
