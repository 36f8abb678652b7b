"""aecore.evaluation on the bundled digits and the shipped models: Parzen windows against scikit-learn and scipy,
the source's punchlines (k-means beats the data; a moved digit is farther than another digit), shift-aware nearest
neighbours, the importance-weighted curve, and the digit classifier."""
import math

import numpy as np
import pytest
import torch

from aecore import evaluation as ev
from aecore.checkpoints import load_checkpoint
from aecore.metrics import iw_nll, log_importance_weights


def test_parzen_matches_scikit_learn_and_scipy():
    from scipy.stats import gaussian_kde
    from sklearn.neighbors import KernelDensity

    g = torch.Generator().manual_seed(0)
    centres, x = torch.rand(60, 3, generator=g), torch.rand(25, 3, generator=g)
    ours = ev.parzen_log_likelihood(x, centres, 0.3).numpy()
    sk = KernelDensity(bandwidth=0.3).fit(centres.numpy()).score_samples(x.numpy())
    np.testing.assert_allclose(ours, sk, rtol=1e-5)
    # scipy's kernel covariance is bw^2 times the data's: whiten the centres so that it is bw^2 I
    c = centres.double().numpy()
    c = (c - c.mean(0)) @ np.linalg.inv(np.linalg.cholesky(np.cov(c.T))).T
    kde = gaussian_kde(c.T, bw_method=0.4)
    np.testing.assert_allclose(ev.parzen_log_likelihood(x, torch.from_numpy(c).float(), 0.4).numpy(),
                               kde.logpdf(x.double().numpy().T), rtol=1e-4)


def test_bandwidth_is_the_validation_optimum():
    g = torch.Generator().manual_seed(1)
    centres, val = torch.randn(200, 2, generator=g), torch.randn(100, 2, generator=g)
    chosen = ev.choose_bandwidth(val, centres)
    scores = {s: ev.parzen_log_likelihood(val, centres, s).mean().item() for s in ev.PARZEN_SIGMAS}
    assert chosen == max(scores, key=scores.get)
    with pytest.raises(ValueError):
        ev.parzen_log_likelihood(val, centres, 0.0)


def test_k_means_beats_the_true_distribution_under_parzen_windows(mnist):
    """The source's table 1 punchline, on our data: 500 k-means centroids score higher than 500 real training digits,
    and the same digits moved one pixel score far lower. Measured on 2026-12-02: 209, 88 and 33 nats (s.e. ~5):
    the margins asserted are 10 standard errors."""
    perm = torch.randperm(len(mnist.train_x), generator=torch.Generator().manual_seed(0))
    pool, val = mnist.train_x[perm[:3000]], mnist.train_x[perm[3000:]]
    real = ev.parzen_score("real", pool[:500], val, mnist.test_x)
    kmeans = ev.parzen_score("kmeans", ev.kmeans_centroids(pool, 500, seed=0), val, mnist.test_x)
    moved = ev.parzen_score("moved", ev.shift(pool[:500], 1, 0), val, mnist.test_x)
    assert kmeans.mean > real.mean + 50, (kmeans, real)
    assert moved.mean < real.mean - 25, (moved, real)


def test_shift_moves_pixels_and_fills_with_background():
    x = torch.arange(1, 26, dtype=torch.float32).view(1, 1, 5, 5)
    right = ev.shift(x, 1, 0)
    assert torch.equal(right[..., :, 1:], x[..., :, :-1]) and right[..., :, 0].abs().sum() == 0
    down_left = ev.shift(x, -2, 1)
    assert torch.equal(down_left[..., 1:, :3], x[..., :-1, 2:]) and down_left[..., 0, :].abs().sum() == 0
    assert ev.shift(x, 5, 0).abs().sum() == 0 and torch.equal(ev.shift(x, 0, 0), x)


def test_a_moved_copy_escapes_the_plain_check_but_not_the_shift_aware_one(mnist):
    pool = mnist.train_x[:500]
    planted = ev.shift(pool[[7, 42]], 2, -1)
    nb = ev.nearest_with_shifts(planted, pool, max_shift=2)
    assert nb.shifted_index.tolist() == [7, 42] and nb.shifted_distance.max() < 1e-5
    assert nb.shift == [(2, -1), (2, -1)]
    assert nb.plain_distance.min() > 3, nb.plain_distance  # as far as an unrelated digit: the plain check is fooled


def test_pixel_distance_prefers_another_digit_over_a_moved_one(mnist):
    """Doersch's fig. 3 on the bundled digits: the test digit the page opens on is closer, in L2, to a digit of
    another class than to itself moved by two pixels."""
    y = mnist.test_y.numpy()
    i = ev.most_striking_shift(mnist.test_x, y)
    ex = ev.pixel_vs_shift(mnist.test_x, y, i)
    assert y[ex.other_index] != y[i]
    assert ex.other_distance < ex.shifted[2], ex
    assert ex.shifted[1] == pytest.approx(ev.pixel_distance(ev.shift(mnist.test_x[i:i + 1], 1, 0),
                                                            mnist.test_x[i:i + 1]).item())


def test_importance_weighted_estimates_fall_towards_the_likelihood(mnist):
    model = load_checkpoint("checkpoints/mlp_vae_z2.pt").model
    x = mnist.test_x[:60]
    curve = ev.iw_curve(model, x, (1, 5, 50, 200), seed=0, batch=20)
    means = [curve.nll[k].mean().item() for k in (1, 5, 50, 200)]
    assert means == sorted(means, reverse=True), means  # each larger k is a tighter bound
    assert curve.neg_elbo.mean().item() >= means[-1]
    # one sample is an unbiased -ELBO estimate: within noise of the 200-sample average (measured gap 0.1-2 nats)
    assert means[0] == pytest.approx(curve.neg_elbo.mean().item(), abs=5.0)
    # the k-sample estimate uses the first k of the same draws as iw_nll(samples=k)
    torch.testing.assert_close(curve.nll[50], iw_nll(model, x, 50, seed=0, batch=20), rtol=1e-5, atol=1e-4)
    w = log_importance_weights(model, x[:5], 3, seed=0)
    assert w.shape == (3, 5) and torch.isfinite(w).all()
    assert -(torch.logsumexp(w, 0) - math.log(3)).mean() > 0


def test_the_digit_classifier_counts_digits(mnist):
    clf = ev.digit_classifier(mnist.train_x, mnist.train_y.numpy())
    accuracy = clf.score(mnist.test_x.flatten(1).numpy(), mnist.test_y.numpy())
    assert accuracy > 0.85, accuracy  # measured 0.898
    shares = ev.coverage(clf.predict(mnist.test_x.flatten(1).numpy()))
    assert shares.sum() == pytest.approx(1.0) and (shares > 0.05).all()
    assert ev.coverage([3, 3, 3]).tolist() == [0, 0, 0, 1, 0, 0, 0, 0, 0, 0]
