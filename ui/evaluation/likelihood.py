"""Section 2 of the Evaluation Lab: log-likelihood is the honest number. -ELBO and the importance-weighted estimate
of -log p(x) as k grows, for a chosen VAE, with the images the model finds most and least likely."""
from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from aecore import evaluation as ev
from aecore.viz import room
from ui.evaluation.common import data, memoize, model_id, pick_vae
from ui.widgets import image_rows, set_url, url_value

KS = (1, 5, 50, 500)


def curve(entry, n: int, seed: int) -> ev.IWCurve:
    """Cached per model, image count and seed: 500 decoder passes per image take seconds for a conv VAE."""
    def compute():
        bar = st.progress(0.0, text=f"Drawing {max(KS)} codes per image from q(z|x) and decoding them…")
        result = ev.iw_curve(entry.model, data().test_x[:n], KS, seed, progress=lambda done, total: bar.progress(
            done / total, text=f"Scoring test digits with {max(KS)} codes each: {done}/{total}"))
        bar.empty()
        return result

    return memoize(("iw", model_id(entry), n, seed), compute)


def figure(result: ev.IWCurve) -> go.Figure:
    means = [result.nll[k].mean().item() for k in KS]
    fig = go.Figure(go.Scatter(x=list(KS), y=means, mode="lines+markers", name="IW estimate of -log p(x)",
                               hovertemplate="k = %{x}: %{y:.2f} nats<extra></extra>"))
    elbo = result.neg_elbo.mean().item()
    fig.add_hline(y=elbo, line_dash="dot", line_color="#d62728", annotation_text=f"-ELBO {elbo:.2f}",
                  annotation_position="top right")
    fig.update_layout(title="-log p(x) estimated with k codes per image",
                      xaxis=dict(title="k: codes sampled per image (log scale)", type="log", tickvals=list(KS)),
                      yaxis_title="mean -log p(x), nats (lower is better)", height=380, showlegend=False,
                      margin=room(t=60, l=75))
    return fig


@st.fragment
def likelihood_curve() -> None:
    st.markdown("A VAE's training loss, **-ELBO**, is an upper bound on the honest number, **-log p(x)**: the nats it "
                "takes to encode an image under the model (lower is better). The gap is exactly how far the encoder's "
                "guess q(z|x) is from the true posterior: log p(x) = ELBO + KL(q(z|x) ‖ p(z|x)). Importance weighting "
                "with k sampled codes per image closes that gap as k grows.")
    c1, c2, c3 = st.columns([2, 1, 1])
    entry = pick_vae("VAE to judge", "iwmodel", default="shipped:mlp_vae_z2", where=c1)
    if entry is None:
        return
    n = c2.select_slider("Test images", [20, 50, 100, 200], url_value("iwn", 100, [20, 50, 100, 200], int),
                         help="How many test digits to score; each needs 500 decoder passes.")
    seed = c3.number_input("Seed", 0, 999, url_value("iwseed", 0, cast=int, bounds=(0, 999)), key="ev_iwseed",
                           help="Which codes are sampled from q(z|x).")
    set_url(iwmodel=entry.key, iwn=n, iwseed=seed)
    result = curve(entry, n, int(seed))
    left, right = st.columns([3, 2])
    left.plotly_chart(figure(result), key="ev_iw")
    final = result.nll[max(KS)]
    with right:
        st.dataframe([{"estimate": "-ELBO (mean over 500 codes)", "nats per image": f"{result.neg_elbo.mean():.2f}"}]
                     + [{"estimate": f"IW, k = {k}", "nats per image": f"{result.nll[k].mean():.2f}"} for k in KS],
                     hide_index=True)
        gap = (result.neg_elbo - final).mean().item()
        st.metric("Gap -ELBO − IW (k = 500)", f"{gap:.2f} nats",
                  help="An estimate (from below) of KL(q(z|x) ‖ p(z|x)): how much the encoder's approximation costs.")
    order = final.argsort()
    x = data().test_x[:n]
    best, worst = order[:8], order.flip(0)[:8]
    st.markdown("**The most and the least likely test digits** under this model (IW, k = 500)")
    image_rows({f"most likely ({final[best[0]]:.0f}-{final[best[-1]]:.0f} nats)": x[best],
                f"least likely ({final[worst[-1]]:.0f}-{final[worst[0]]:.0f} nats)": x[worst]}, target=48)
    st.caption("Takeaway: report -log p(x) (an IW estimate with large k), not just -ELBO; simple, thin strokes are "
               "cheap to encode, unusual or heavy digits expensive. Likelihood measures the whole distribution, "
               "but not whether single samples look good.")
