"""aecore.anatomy on the shipped models: the layer table adds up to the model, shapes follow the lecture, traversals
sweep one dimension, the high-frequency share ranks a checkerboard filter above a flat one, and PCA's subspace is
found at 0 degrees from itself."""
import numpy as np
import pytest
import torch

from aecore import anatomy as an
from aecore.checkpoints import list_checkpoints, load_checkpoint


@pytest.mark.parametrize("path", list_checkpoints("checkpoints"), ids=lambda p: p.stem)
def test_the_layer_table_adds_up_to_the_model(path):
    model = load_checkpoint(path).model
    rows = an.layer_table(model)
    assert sum(r.params for r in rows) == sum(p.numel() for p in model.parameters())
    assert rows[0].output == rows[-1].output == model.spec.input_shape  # image in, image out
    codes = [r for r in rows if r.part == "code"]
    assert all(r.output == (model.spec.latent_dim,) for r in codes) and len(codes) == (2 if model.variational else 1)


def test_the_lecture_conv_vae_layer_by_layer():
    rows = an.layer_table(load_checkpoint("checkpoints/conv_vae_z2.pt").model)
    shapes = [r.output for r in rows if r.params]
    assert shapes == [(32, 14, 14), (64, 7, 7), (2,), (2,), (3136,), (64, 15, 15), (32, 31, 31), (1, 28, 28)]
    assert sum(r.params for r in rows) == 96_677  # DESIGN.md: the lecture's count at z = 2


def test_a_traversal_sweeps_one_dimension_and_keeps_the_rest(mnist):
    model = load_checkpoint("checkpoints/beta_vae.pt").model
    z0 = torch.zeros(model.spec.latent_dim)
    images, values = an.traversals(model, z0, dims=[3, 7], steps=5)
    assert images.shape == (10, 1, 28, 28) and np.allclose(values, -values[::-1]) and values[2] == pytest.approx(0)
    # the middle value is 0 in every row: those decodings are z0's own
    torch.testing.assert_close(images[2], images[7])
    torch.testing.assert_close(images[2], model.decode(z0[None])[0])
    assert not torch.allclose(images[0], images[4])


def test_high_frequency_share_ranks_sharp_above_flat():
    flat = torch.ones(1, 1, 3, 3)
    checker = torch.tensor([[1.0, -1, 1], [-1, 1, -1], [1, -1, 1]]).view(1, 1, 3, 3)
    share = an.high_frequency_share(torch.cat([flat, checker]))
    assert share[1] > 0.6 > 0.2 > share[0]


def test_pca_is_at_zero_degrees_from_itself(mnist):
    from sklearn.decomposition import PCA

    model = load_checkpoint("checkpoints/linear_ae.pt").model
    result = an.compare_with_pca(model, mnist.train_x, mnist.test_x)
    assert result.k == 50 and 0 <= result.angles_deg.min() and result.angles_deg.max() <= 90.0 + 1e-6
    assert 0 < result.ae_mse < 0.05 and 0 < result.pca_mse < 0.05
    pca = PCA(n_components=50, random_state=0).fit(mnist.train_x.flatten(1).numpy())
    linear = next(m for m in model.decoder.modules() if isinstance(m, torch.nn.Linear))
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(pca.components_.T.copy()))  # a decoder spanning PCA's own subspace
    assert an.compare_with_pca(model, mnist.train_x, mnist.test_x).angles_deg.max() < 0.1


def test_a_vae_code_is_a_cloud_and_an_ae_code_a_point(mnist):
    vae = load_checkpoint("checkpoints/conv_vae_z2.pt").model
    means, sigmas = an.code_clouds(vae, mnist.test_x[:300])
    assert means.shape == sigmas.shape == (300, 2) and (sigmas > 0).all()
    torch.testing.assert_close(means, vae.encode(mnist.test_x[:300]), rtol=1e-4, atol=1e-4)  # across the batches
    points, none = an.code_clouds(load_checkpoint("checkpoints/linear_ae.pt").model, mnist.test_x[:10])
    assert none is None and points.shape == (10, 50)
    x, y = an.ellipse_paths(means[:3], sigmas[:3], points=8)
    assert len(x) == 3 * 9 and np.isnan(x[8]) and not np.isnan(x[:8]).any()
    r = ((x[:8] - means[0, 0].item()) / sigmas[0, 0].item()) ** 2 + ((y[:8] - means[0, 1].item()) /
                                                                     sigmas[0, 1].item()) ** 2
    np.testing.assert_allclose(r, 1.0, rtol=1e-5)  # on the 1-sigma ellipse
