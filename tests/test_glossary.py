"""Plain words: every metric a run reports reaches the visitor under a readable name, and every term a name points
to is explained. Real metrics from a shipped model, not a hand-written dict."""
import re

from aecore.checkpoints import load_checkpoint
from aecore.metrics import evaluate_model
from ui import glossary


def test_every_reported_metric_has_a_plain_name(mnist):
    for name in ("conv_vae_z2", "denoising_ae"):
        ckpt = load_checkpoint(f"checkpoints/{name}.pt")
        metrics = evaluate_model(ckpt.model, mnist, ckpt.config, iw_samples=2)
        rows = glossary.metric_rows(metrics)
        shown = {r["metric"] for r in rows}
        assert len(rows) == sum(isinstance(v, (int, float)) and not isinstance(v, bool) for v in metrics.values())
        assert not [n for n in shown if re.search(r"\w_\w", n)], shown  # no code names such as neg_elbo
        numeric = [k for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
        unnamed = [k for k in numeric if k not in glossary.METRIC_NAMES and not re.fullmatch(r"iw_nll_k\d+", k)]
        assert not unnamed, unnamed  # a new metric needs a plain name, not its key with spaces
        assert all(r["value"] for r in rows)


def test_every_term_a_name_points_to_is_explained():
    assert {t for _, t in glossary.METRIC_NAMES.values() if t} <= set(glossary.TERMS)
    assert set(glossary.SUMMARY_TERMS.values()) <= set(glossary.TERMS)
    from aecore.noise import NOISE_KINDS

    assert set(glossary.NOISE_LABELS) == set(NOISE_KINDS)
