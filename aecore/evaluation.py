"""Judging a generative model, and how not to (the source's appendix, after Theis, van den Oord & Bethge 2016 and
Doersch 2016): importance-weighted likelihood as k grows, Parzen-window estimates and the k-means baseline that
beats the data, pixel distance against shifts, shift-aware nearest neighbours, and digit coverage by a classifier.

Images are (N, C, H, W) in [0, 1]; log-likelihoods are nats per image. Objective fits on 2-D toy data are in
divergences.py.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .metrics import log_importance_weights

PARZEN_SIGMAS = tuple(float(s) for s in np.geomspace(0.05, 1.0, 25))  # bandwidth candidates, pixel units in [0, 1]


# --- likelihood: -ELBO and the importance-weighted bound as k grows ----------------------------------------


@dataclass(frozen=True)
class IWCurve:
    neg_elbo: torch.Tensor  # -ELBO per image, (N,): minus the mean log weight over all the samples
    nll: dict[int, torch.Tensor]  # k -> the k-sample estimate of -log p(x) per image, (N,)


def iw_curve(model, x, ks=(1, 5, 50, 500), seed: int = 0, batch: int = 20, progress=None) -> IWCurve:
    """-log p(x) estimated with k importance samples for each k, from one set of max(ks) samples: the k-sample
    estimate uses the first k. In expectation it falls towards -log p(x) as k grows (Burda et al. 2016); k = 1 is a
    one-sample -ELBO. The gap -ELBO - (-log p(x)) is KL(q(z|x) || p(z|x)), which larger k close. Small batches: a
    progress bar moves often."""
    w = log_importance_weights(model, x, max(ks), seed, batch=batch, progress=progress)
    return IWCurve(-w.mean(0), {k: -(torch.logsumexp(w[:k], 0) - math.log(k)) for k in ks})


# --- Parzen windows --------------------------------------------------------------------------------------------


def _squared_distances(x: torch.Tensor, centres: torch.Tensor, batch: int = 500) -> torch.Tensor:
    xs, cs = x.flatten(1).double(), centres.flatten(1).double()
    return torch.cat([torch.cdist(xs[i : i + batch], cs).square() for i in range(0, len(xs), batch)])


def _parzen_from_distances(d2: torch.Tensor, dim: int, sigma: float) -> torch.Tensor:
    const = -math.log(d2.shape[1]) - 0.5 * dim * math.log(2 * math.pi * sigma**2)
    return (torch.logsumexp(-d2 / (2 * sigma**2), 1) + const).float()


def parzen_log_likelihood(x: torch.Tensor, centres: torch.Tensor, sigma: float) -> torch.Tensor:
    """log p(x) under a Gaussian kernel density with isotropic bandwidth sigma around `centres`, (N,) nats:
    log (1/M) sum_m N(x; c_m, sigma^2 I)."""
    if not sigma > 0 or len(centres) == 0:
        raise ValueError("a Parzen window needs a positive bandwidth and at least one centre")
    return _parzen_from_distances(_squared_distances(x, centres), x[0].numel(), sigma)


def choose_bandwidth(validation: torch.Tensor, centres: torch.Tensor, sigmas=PARZEN_SIGMAS) -> float:
    """The bandwidth with the highest mean validation log-likelihood (as Theis et al. chose theirs)."""
    d2, dim = _squared_distances(validation, centres), validation[0].numel()
    scores = [_parzen_from_distances(d2, dim, s).mean().item() for s in sigmas]
    return float(sigmas[int(np.argmax(scores))])


def kmeans_centroids(x: torch.Tensor, k: int, seed: int = 0) -> torch.Tensor:
    """k-means (scikit-learn) centroids of x, shaped like x's images: the 'model' that beats the data in Theis et al."""
    from sklearn.cluster import KMeans

    flat = x.flatten(1).numpy()
    km = KMeans(n_clusters=k, n_init=1, random_state=seed).fit(flat)
    return torch.from_numpy(km.cluster_centers_.astype(np.float32)).view(k, *x.shape[1:])


@dataclass(frozen=True)
class ParzenResult:
    name: str
    centres: int
    sigma: float
    mean: float  # mean test log-likelihood, nats
    sem: float  # its standard error over test images


def parzen_score(name: str, centres, validation, test) -> ParzenResult:
    sigma = choose_bandwidth(validation, centres)
    ll = parzen_log_likelihood(test, centres, sigma)
    return ParzenResult(name, len(centres), sigma, ll.mean().item(), (ll.std() / math.sqrt(len(ll))).item())


# --- shifts and distances --------------------------------------------------------------------------------------


def shift(images: torch.Tensor, dx: int, dy: int) -> torch.Tensor:
    """Images moved dx pixels right and dy down; pixels moved in from outside are 0 (background)."""
    out = torch.zeros_like(images)
    h, w = images.shape[-2:]
    if abs(dx) >= w or abs(dy) >= h:
        return out
    src_y, dst_y = slice(max(-dy, 0), h - max(dy, 0)), slice(max(dy, 0), h - max(-dy, 0))
    src_x, dst_x = slice(max(-dx, 0), w - max(dx, 0)), slice(max(dx, 0), w - max(-dx, 0))
    out[..., dst_y, dst_x] = images[..., src_y, src_x]
    return out


def shifts_within(max_shift: int) -> list[tuple[int, int]]:
    r = range(-max_shift, max_shift + 1)
    return [(dx, dy) for dy in r for dx in r]


def pixel_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Euclidean (L2) distance between images, pairwise along the first dimension, (N,)."""
    return (a - b).flatten(1).norm(dim=1)


@dataclass(frozen=True)
class Neighbours:
    plain_index: torch.Tensor  # nearest pool image in pixel space, (N,)
    plain_distance: torch.Tensor
    shifted_index: torch.Tensor  # nearest pool image when images may move by up to max_shift pixels
    shifted_distance: torch.Tensor
    shift: list[tuple[int, int]]  # (dx, dy): the pool image moved by this matches the query best


def nearest_with_shifts(queries: torch.Tensor, pool: torch.Tensor, max_shift: int = 2,
                        batch: int = 4096) -> Neighbours:
    """Nearest pool image to each query in pixel (L2) distance, plainly and allowing moves of up to max_shift pixels:
    a copied training image moved by a pixel is far in plain pixel distance but about 0 away once moves are allowed.

    The queries move (by -dx, -dy), not the pool: a few queries instead of copies of the whole training set, which
    is the same for images with an empty border such as digits. The pool is read `batch` images at a time."""
    moves = shifts_within(max_shift)
    n = len(queries)
    moved = torch.cat([shift(queries, -dx, -dy).flatten(1) for dx, dy in moves])  # (moves * N, D)
    best_d = torch.full((len(moves), n), float("inf"))
    best_i = torch.zeros(len(moves), n, dtype=torch.long)
    for start in range(0, len(pool), batch):
        # one 2-D distance matrix: a batched cdist would expand the pool batch once per move (25 x 12 MB)
        d, i = torch.cdist(moved, pool[start : start + batch].flatten(1).float()).min(1)
        d, i = d.view(len(moves), n), i.view(len(moves), n)
        better = d < best_d
        best_d, best_i = torch.where(better, d, best_d), torch.where(better, i + start, best_i)
    # cdist's matrix-product form leaves ~1e-2 of rounding on an exact copy: measure the winners exactly
    best_d = (moved - pool.flatten(1).float()[best_i.flatten()]).norm(dim=1).view(len(moves), n)
    plain = moves.index((0, 0))
    m = best_d.argmin(0)
    cols = torch.arange(n)
    return Neighbours(best_i[plain], best_d[plain], best_i[m, cols], best_d[m, cols], [moves[k] for k in m.tolist()])


@dataclass(frozen=True)
class ShiftExample:
    index: int  # the test digit
    shifted: dict[int, float]  # pixels moved right -> L2 distance to the original
    other_index: int  # the nearest test digit of another class
    other_distance: float


def pixel_vs_shift(test_x: torch.Tensor, test_y, index: int, shifts=(1, 2)) -> ShiftExample:
    """A digit, the same digit moved right by 1 and 2 pixels, and the nearest digit of a different class, with
    their pixel (L2) distances to the original (Doersch 2016, fig. 3)."""
    x = test_x[index : index + 1]
    y = torch.as_tensor(np.asarray(test_y))
    d = torch.cdist(x.flatten(1), test_x.flatten(1))[0]
    d[y == y[index]] = float("inf")
    other = int(torch.argmin(d))
    return ShiftExample(index, {s: pixel_distance(shift(x, s, 0), x).item() for s in shifts}, other, d[other].item())


def most_striking_shift(test_x: torch.Tensor, test_y, shift_px: int = 2, candidates: int = 300) -> int:
    """The test digit (among the first `candidates`) whose nearest other-class digit is closest relative to its own
    shifted copy: the clearest case that pixel distance is not perceptual distance."""
    n = min(candidates, len(test_x))
    x, y = test_x[:n].flatten(1), torch.as_tensor(np.asarray(test_y))
    d = torch.cdist(x, test_x.flatten(1))
    d[y[:n, None] == y[None, :]] = float("inf")
    own = pixel_distance(shift(test_x[:n], shift_px, 0), test_x[:n])
    return int(torch.argmin(d.min(1).values / own.clamp_min(1e-6)))


# --- digit coverage ---------------------------------------------------------------------------------------------


def digit_classifier(train_x: torch.Tensor, train_y, seed: int = 0):
    """Multinomial logistic regression (scikit-learn) on pixels: small, fast, and good enough to count digits."""
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(max_iter=300, C=0.05, random_state=seed)
    return clf.fit(train_x.flatten(1).numpy(), np.asarray(train_y))


def coverage(labels, classes: int = 10) -> np.ndarray:
    """Share of samples given each label, (classes,)."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=classes)[:classes]
    return counts / max(counts.sum(), 1)
