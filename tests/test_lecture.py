"""The first lecture's conv VAE and its loss exactly as written: the layers and shapes the lecture's code has, the
loss equal to nn.BCELoss() + a KL summed over the batch, and its consequence, found by training both ways: the KL
term, weighted pixels x batch times too much, switches the code off."""
import pytest
import torch
import torch.nn as nn

from aecore import anatomy as an
from aecore.catalog import get_preset
from aecore.losses import kl_divergence, objective
from aecore.models import build_model
from aecore.train import TrainConfig, build_seeded


def test_the_lecture_model_has_the_lecture_s_layers():
    model = build_model(get_preset("lecture_vae").spec((1, 28, 28), 2))
    rows = an.layer_table(model)
    enc = [(r.kind, r.output) for r in rows if r.part == "encoder" and r.kind.split("(")[0] in
           ("Conv2d", "MaxPool2d", "Linear")]
    assert enc == [("Conv2d(1 → 8, k3, s1)", (8, 28, 28)), ("MaxPool2d", (8, 14, 14)),
                   ("Conv2d(8 → 16, k3, s1)", (16, 14, 14)), ("MaxPool2d", (16, 7, 7)),
                   ("Conv2d(16 → 32, k3, s1)", (32, 7, 7)), ("Linear(1568 → 800)", (800,))]
    assert [r.kind for r in rows if r.part == "code"][0].startswith("Linear(800 → 2)")
    assert rows[-1].output == (1, 28, 28)
    assert sum(p.numel() for p in model.parameters()) == 2_533_093
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.encoder)


def test_the_as_written_loss_is_bce_loss_plus_a_kl_summed_over_the_batch():
    g = torch.Generator().manual_seed(0)
    model = build_model(get_preset("lecture_vae").spec((1, 28, 28), 2)).eval()
    x = torch.rand(16, 1, 28, 28, generator=g).round()
    out = model(x, g)
    lecture = nn.BCELoss()(torch.sigmoid(out.logits), x) + kl_divergence(out.mu, out.logvar).sum()
    ours = objective(out, x, "bce", reduction="as_written")
    torch.testing.assert_close(ours["loss"].mean(), lecture, rtol=1e-4, atol=1e-5)
    correct = objective(out, x, "bce")
    torch.testing.assert_close(ours["kl"], correct["kl"])  # the parts stay in nats: only the weighting differs
    with pytest.raises(ValueError):
        objective(out, x, "bce", reduction="sum")
    with pytest.raises(ValueError):
        TrainConfig(reduction="mean")


@pytest.mark.slow
def test_training_as_written_switches_the_code_off(mnist):
    from aecore.fit import fit
    from aecore.metrics import kl_per_latent

    kl = {}
    for reduction in ("per_image", "as_written"):
        cfg = get_preset("lecture_vae").config(epochs=1, batch_size=100, max_steps=40, reduction=reduction)
        model = build_seeded(get_preset("lecture_vae").spec(mnist.shape, 2), 0)
        fit(model, mnist.train_x, mnist.test_x, cfg)
        kl[reduction] = kl_per_latent(model, mnist.test_x[:500]).sum().item()
    # measured after 40 steps: per image ~3-5 nats, as written < 0.01 (after 3 epochs: 4.2 against 0.00004)
    assert kl["per_image"] > 1.0 and kl["as_written"] < 0.1 * kl["per_image"], kl
