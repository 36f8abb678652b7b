"""The CPU fast paths: chosen per machine behind guards, really taken where chosen, and the same numbers."""
import math
import os

import pytest
import torch
from torch import nn

from aecore import bf16, fastconv, fastlinear, fastpath, fastprobe, fastresize
from aecore.fastpath import Plan, fast_kernels
from aecore.models import ModelSpec, build_model
from aecore.train import TrainConfig, loss_parts

ALL = Plan(linear=True, conv=True, conv_transpose=True, bce=True, mse=True, channels_last=True, resize_conv=True,
           reason="test: all")
NONE = Plan(reason="test: none")


@pytest.fixture
def plan():
    """Install a plan for one test, then let the process decide again."""
    before = fastpath._plan
    yield fastpath.use_plan
    fastpath.use_plan(before)


def run(layer, x, taken_by=None):
    """Output, input gradient and parameter gradients of layer(x) (inside a model's fast-path block)."""
    layer.zero_grad()
    x = x.detach().clone().requires_grad_(True)
    holder = build_model(ModelSpec("conv_vae", (1, 28, 28), 2, True))  # a model that can gain
    fastpath.TAKEN.clear()
    with fast_kernels(holder):
        y = layer(x)
    (y * torch.linspace(-1, 1, y.numel()).view_as(y)).sum().backward()
    if taken_by is not None:
        assert fastpath.TAKEN[taken_by] >= 1, f"{taken_by} was not taken: {dict(fastpath.TAKEN)}"
    return y.detach(), x.grad, [p.grad.clone() for p in layer.parameters()]


CASES = [
    (nn.Conv2d(32, 1, 4), (4, 32, 31, 31), "conv"),  # the conv VAE's last layer: few output channels
    (nn.Conv2d(16, 1, 3, padding=1), (2, 16, 35, 35), "conv"),
    (nn.ConvTranspose2d(64, 64, 3, stride=2), (4, 64, 7, 7), "conv_transpose"),  # odd output sizes: 7 -> 15
    (nn.ConvTranspose2d(64, 32, 3, stride=2), (2, 64, 15, 11), "conv_transpose"),
    (nn.ConvTranspose2d(32, 16, 3, stride=2, padding=1), (3, 32, 7, 9), "conv_transpose"),  # padded: 7 -> 13
    (nn.ConvTranspose2d(16, 16, 5, stride=2, padding=2), (2, 16, 6, 6), "conv_transpose"),  # k5: 6 -> 11
    (nn.ConvTranspose2d(32, 16, 4, stride=2, padding=1), (2, 32, 7, 7), "conv_transpose"),  # even: 7 -> 14
    (nn.ConvTranspose2d(64, 32, 3, padding=1), (2, 64, 7, 7), "conv_transpose"),  # stride 1 (conv AE)
    (nn.Conv2d(8, 1, 3, padding=1), (3, 8, 28, 28), "conv"),  # padded (the lecture VAE's last layer)
    (nn.Conv2d(16, 4, 2), (2, 16, 9, 13), "conv"),  # several output channels, a wide image
    (nn.Conv2d(8, 1, 3, padding=(1, 0)), (2, 8, 10, 7), "conv"),  # padded on one axis only
    (nn.Conv2d(16, 2, 2, padding=1, bias=False), (2, 16, 6, 5), "conv"),  # no bias
]
if fastlinear.AVAILABLE:
    CASES += [(nn.Linear(784, 512), (100, 784), "linear"), (nn.Linear(3136, 32), (100, 3136), "linear"),
              (nn.Linear(32, 3136), (100, 32), "linear")]


@pytest.mark.parametrize("layer, shape, path", CASES, ids=[f"{c[2]}-{tuple(c[1])}" for c in CASES])
def test_each_fast_path_is_taken_where_planned_and_matches_the_plain_layer(plan, layer, shape, path):
    torch.manual_seed(0)
    if len(shape) == 4:
        layer = layer.to(memory_format=torch.channels_last)
    x = torch.randn(shape)
    x = x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x
    plan(NONE)
    plain = run(layer, x)
    assert fastpath.TAKEN[path] == 0  # plan off: the plain layer ran
    plan(ALL)
    fast = run(layer, x, taken_by=path)
    assert torch.allclose(plain[0], fast[0], atol=1e-4, rtol=1e-4)
    for a, b in zip([plain[1], *plain[2]], [fast[1], *fast[2]]):
        assert torch.allclose(a, b, atol=1e-3, rtol=1e-4)


def test_the_conv_vae_runs_its_conv_fast_paths_in_training_and_in_inference(plan, mnist):
    plan(ALL)
    model = build_model(ModelSpec("conv_vae", (1, 28, 28), 2, True))
    fastpath.adopt(model)
    x = mnist.test_x[:32].contiguous(memory_format=torch.channels_last)
    fastpath.TAKEN.clear()
    loss_parts(model, x, TrainConfig(), torch.Generator().manual_seed(0))["loss"].mean().backward()
    assert fastpath.TAKEN["conv"] == 1 and fastpath.TAKEN["conv_transpose"] == 2 and fastpath.TAKEN["bce"] == 1
    fastpath.TAKEN.clear()
    with torch.inference_mode():
        model.decode(torch.zeros(5, 2))  # the manifold, prior samples and IW-NLL decode like this
        model.reconstruct(x)
    assert fastpath.TAKEN["conv"] == 2 and fastpath.TAKEN["conv_transpose"] == 4


def test_a_whole_model_gives_the_same_loss_and_gradients_with_and_without_fast_paths(plan):
    results = []
    for p in (NONE, ALL):
        plan(p)
        for spec, recon in ((ModelSpec("mlp", (1, 28, 28), 2, True), "bce"),
                            (ModelSpec("conv_vae", (1, 28, 28), 2, True), "bce"),
                            (ModelSpec("linear", (1, 28, 28), 50), "mse"),
                            (ModelSpec("mlp", (1, 28, 28), 16), "mse")):
            torch.manual_seed(0)
            model = fastpath.adopt(build_model(spec))
            x = torch.rand(32, 1, 28, 28).contiguous(memory_format=fastpath.memory_format(model))
            fastpath.TAKEN.clear()
            loss = loss_parts(model, x, TrainConfig(recon=recon), torch.Generator().manual_seed(0))["loss"].mean()
            loss.backward()
            assert fastpath.TAKEN[recon] == (p is ALL), (spec.family, recon)
            results.append((loss.item(), [p.grad.clone() for p in model.parameters()]))
    for (loss_a, grads_a), (loss_b, grads_b) in zip(results[:4], results[4:]):
        assert loss_a == pytest.approx(loss_b, rel=1e-5)
        for a, b in zip(grads_a, grads_b):
            assert torch.allclose(a, b, atol=1e-4, rtol=1e-3)


def test_a_first_forward_in_inference_mode_does_not_break_later_training(plan):
    # The app evaluates a model (inference_mode) before anyone trains one; cached kernels must stay trainable.
    plan(ALL)
    layer = nn.Conv2d(32, 1, 3).to(memory_format=torch.channels_last)  # a shape no other test builds first
    x = torch.randn(2, 32, 12, 12).contiguous(memory_format=torch.channels_last)
    fastpath.TAKEN.clear()
    with torch.inference_mode(), fast_kernels(build_model(ModelSpec("conv_vae", (1, 28, 28), 2, True))):
        layer(x)
    assert fastpath.TAKEN["conv"] == 1
    plan(NONE)
    plain = run(layer, x)
    plan(ALL)
    fast = run(layer, x, taken_by="conv")
    for a, b in zip(plain[2], fast[2]):
        assert torch.allclose(a, b, atol=1e-3, rtol=1e-4)


def test_small_layers_and_other_shapes_stay_native(plan):
    plan(ALL)
    for layer, inp in ((nn.Linear(256, 2), torch.rand(100, 256)), (nn.Linear(784, 512), torch.rand(4, 3, 784)),
                       (nn.Conv2d(32, 32, 3), torch.rand(2, 32, 9, 9)), (nn.ConvTranspose2d(64, 32, 4, 2, 1),
                                                                        torch.rand(2, 64, 7, 7))):  # even 14x14
        fastpath.TAKEN.clear()
        with fast_kernels(build_model(ModelSpec("conv_vae", (1, 28, 28), 2, True))):
            y = layer(inp)
        assert sum(fastpath.TAKEN.values()) == 0 and torch.allclose(y, layer(inp))


def test_only_models_with_something_to_gain_pay_for_the_fast_path_mode(plan):
    import contextlib

    on = lambda family, z: not isinstance(  # noqa: E731
        fast_kernels(build_model(ModelSpec(family, (1, 28, 28), z, False))), contextlib.nullcontext)
    plan(ALL)
    assert on("conv_ae", 2) and on("mlp", 2) == fastlinear.AVAILABLE  # convs; the 784 -> 512 layer
    assert not on("linear", 50)  # 784 -> 50: below the size where oneDNN gains
    plan(Plan(linear=False, conv=True, conv_transpose=True))
    assert on("conv_ae", 2) and not on("mlp", 2)
    plan(NONE)
    assert not on("conv_ae", 2) and not on("mlp", 2)


# ---- the choice per machine ----------------------------------------------------------------------------------


def _missing_here() -> set[str]:
    """Paths whose hardware or build this machine lacks: their guards must refuse, and say why."""
    missing = set() if fastlinear.AVAILABLE else {"linear"}
    units = any(f in bf16.cpu_flags() for f in bf16.HARDWARE_FLAGS)
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper()  # e.g. AVX2 in the emulation of bench/README.md
    capped = cap not in ("", "ALL") and not cap.startswith(("AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX512_CORE_AMX",
                                                            "AVX10"))
    return missing | (set() if units and not capped else {"bf16"})


@pytest.mark.parametrize("cap, allowed", [("", True), ("ALL", True), ("AVX512_CORE_BF16", True),
                                          ("AVX512_CORE_AMX_FP16", True), ("AVX10_1_512", True), ("AVX2", False),
                                          ("AVX2_VNNI_2", False), ("AVX512_CORE", False), ("AVX512_CORE_VNNI", False)])
def test_bf16_is_refused_where_onednn_is_capped_below_its_bfloat16_kernels(cap, allowed):
    assert bf16.isa_allows_bf16(cap) is allowed


def test_the_bf16_guard_reads_the_cap_from_the_environment(monkeypatch):
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", " avx2 ")
    assert bf16.isa_cap() == "AVX2" and "no bfloat16 units" in bf16.guard()  # whatever this CPU has
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    monkeypatch.setenv("DNNL_MAX_CPU_ISA", "avx512_core")
    assert bf16.isa_cap() == "AVX512_CORE" and "no bfloat16 units" in bf16.guard()


def test_the_guards_pass_on_this_torch_and_refuse_versions_outside_the_tested_range():
    for name, guard in fastpath.GUARDS.items():
        if name == "bf16" and name in _missing_here():  # e.g. an AVX-512 Xeon without AMX or AVX-512 BF16
            assert "no bfloat16 units" in guard()
        elif name not in _missing_here():
            assert guard() is None, f"{name}: {guard()}"
    assert fastprobe.torch_version_problem("2.14.1+cu130") is None
    for version in ("1.13.1", "3.0.0", "nightly"):
        assert fastprobe.torch_version_problem(version)


def test_a_guard_that_fails_keeps_its_path_off_even_when_forced(monkeypatch):
    monkeypatch.setitem(fastpath.GUARDS, "conv_transpose", lambda: "aten.convolution_backward changed")
    monkeypatch.setitem(fastpath.GUARDS, "linear", lambda: fastprobe.torch_version_problem("3.1.0"))
    forced = fastpath._choose("all")
    assert forced.conv and forced.bce and not forced.conv_transpose and not forced.linear
    assert "convolution_backward changed" in forced.reason


def test_the_self_check_catches_an_operator_that_computes_something_else():
    x, w = torch.randn(4, 8), torch.randn(3, 8)
    assert fastprobe._self_check(torch.nn.functional.linear, torch.nn.functional.linear, x, w) is None
    assert fastprobe._self_check(lambda a, b: 1.01 * a @ b.t(), torch.nn.functional.linear, x, w)
    assert fastprobe._self_check(lambda a, b: None, torch.nn.functional.linear, x, w)


@pytest.mark.parametrize("mode, expect", [("none", set()), ("conv,bce", {"conv", "bce"})])
def test_the_environment_can_force_the_choice(mode, expect):
    assert {n for n in fastpath.PATHS if getattr(fastpath._choose(mode), n)} == expect


def test_the_measured_choice_keeps_exactly_the_paths_that_won_here():
    measured = fastpath._choose("auto").settle()
    assert {n for n in fastpath.PATHS if not measured.guards[n]} == set(fastpath.PATHS) - _missing_here()
    for name, gain in measured.gains.items():
        if name in _missing_here():
            assert gain == 0.0 and not getattr(measured, name)
        else:
            assert gain > 0.2 and getattr(measured, name) == (gain >= (bf16.MIN_GAIN if name == "bf16" else
                                                                       fastpath.MIN_GAIN)), (name, measured.reason)
            assert f"{name} {gain:.2f}x" in measured.reason


def test_a_plan_survives_the_trip_to_a_worker():
    p = Plan(linear=True, conv=False, conv_transpose=True, bce=False, channels_last=True, reason="x")
    assert Plan.from_dict(p.to_dict()) == p


def test_the_taps_form_applies_only_to_few_output_channels_and_bounded_buffers(monkeypatch):
    cl = torch.channels_last
    x = torch.randn(4, 32, 31, 31).contiguous(memory_format=cl)
    assert fastconv.taps_conv2d(x, torch.randn(1, 32, 4, 4)) is not None
    assert fastconv.taps_conv2d(x, torch.randn(16, 32, 4, 4)) is None  # already fills the vector lanes
    assert fastconv.taps_conv2d(x, torch.randn(3, 32, 3, 3)) is None  # 27 tap planes: slower than native (0.7x)
    assert fastconv.taps_conv2d(x[:, :4].contiguous(memory_format=cl), torch.randn(1, 4, 3, 3)) is None  # 0.88x
    assert fastconv.taps_conv2d(x, torch.randn(1, 32, 4, 4), stride=2) is None
    assert fastconv.taps_conv2d(x.contiguous(), torch.randn(1, 32, 4, 4)) is None  # NCHW: no pixel-major view
    monkeypatch.setattr(fastconv, "TAPS_BUFFER_LIMIT", 16 * 4 * 31 * 31 * 4 - 1)  # one byte short for batch 4
    assert fastconv.taps_conv2d(x, torch.randn(1, 32, 4, 4)) is None
    assert fastconv.taps_conv2d(x[:3], torch.randn(1, 32, 4, 4)) is not None


def test_the_first_plan_can_be_made_from_inside_inference_mode(plan):
    plan(None)
    with torch.inference_mode():  # a page drawing a model, the CLI's eval
        decided = fastpath.plan().settle()
    assert not any(decided.guards[n] for n in fastpath.PATHS if n not in _missing_here()), decided.reason
    assert set(decided.gains) == set(fastpath.PATHS) and "not used yet" not in decided.reason
    assert all(decided.gains[n] > 0.2 for n in fastpath.PATHS if n not in _missing_here()), decided.reason


def test_drawing_a_model_measures_only_the_paths_it_uses(plan):
    """A process that only evaluates (the CLI's eval, a page) never pays for training's measurements; the paths it
    does use are measured on first use, from inside the fast-path block, in their plain forms (no recursion)."""
    measured = plan(fastpath.MeasuredPlan())
    model = build_model(ModelSpec("conv_vae", (1, 28, 28), 2, True)).eval()
    with torch.inference_mode():
        first = model.decode(torch.randn(3, 2))
    assert {"conv", "conv_transpose", "infer_channels_last"} <= set(measured.gains)
    assert not {"linear", "channels_last", "bf16", "bce", "mse"} & set(measured.gains), measured.reason
    assert "not used yet: linear" in measured.reason
    with torch.inference_mode():
        assert torch.allclose(model.decode(torch.randn(3, 2, generator=torch.Generator().manual_seed(0))),
                              model.decode(torch.randn(3, 2, generator=torch.Generator().manual_seed(0))))
    assert first.shape == (3, 1, 28, 28)
    assert fastpath.Plan.from_dict(measured.to_dict()).reason == measured.reason  # a worker gets every path decided
    assert set(measured.gains) == set(fastpath.PATHS)


def test_a_measurement_started_inside_the_fast_path_block_times_the_plain_form(plan):
    """Its 'plain' calls pass through the block's dispatch, which must not hand them the fast form (nor measure
    again): every call of the measurement is the plain op or the fast function called by name."""
    measured = plan(fastpath.MeasuredPlan())
    fastpath.TAKEN.clear()
    with fastpath._CpuFastPaths():
        measured.conv
    assert "conv" in measured.gains and fastpath.TAKEN["conv"] == 0


@pytest.mark.parametrize("upsample, nhwc_calls", [("transposed", 3), ("bilinear", 5), ("nearest", 5)])
def test_passes_without_gradients_run_the_convs_in_nhwc_where_planned(plan, upsample, nhwc_calls):
    """Evaluation and the pages (no gradients) take NHWC inputs under the plan, resizing included; training never
    does; same numbers."""
    torch.manual_seed(0)
    model = build_model(ModelSpec("conv_vae", (1, 28, 28), 2, True, upsample=upsample)).eval()
    z = torch.randn(50, 2)
    plan(NONE)
    fastpath.TAKEN.clear()
    with torch.inference_mode():
        plain = model.decode_logits(z)
    assert fastpath.TAKEN["infer_channels_last"] == 0
    plan(Plan(infer_channels_last=True, reason="test"))
    with torch.inference_mode():
        fast = model.decode_logits(z)
    assert fastpath.TAKEN["infer_channels_last"] == nhwc_calls, "both upsamplings' ops and the last conv"
    assert torch.allclose(plain, fast, atol=1e-4, rtol=1e-4)
    fastpath.TAKEN.clear()
    model.decode_logits(z).sum().backward()  # with gradients: training's own plan decides, not this one
    assert fastpath.TAKEN["infer_channels_last"] == 0


RESIZE_CASES = [("bilinear", (3, 16, 15, 15), (31, 31)), ("nearest", (3, 16, 15, 15), (31, 31)),  # 2k + 1
                ("bilinear", (2, 8, 7, 9), (14, 18)), ("nearest", (2, 8, 7, 9), (15, 18)),  # 2k, mixed
                ("bilinear", (2, 4, 5, 6), (13, 11)), ("nearest", (2, 4, 1, 3), (4, 7))]  # other scales, 1 row


@pytest.mark.parametrize("mode, shape, size", RESIZE_CASES)
@pytest.mark.parametrize("bias, nhwc", [(True, True), (False, False)])
def test_resize_then_conv_at_the_low_resolution_matches_the_plain_layers(mode, shape, size, bias, nhwc):
    """fastresize.py against F.interpolate + conv2d: values, and gradients for input, weight and bias."""
    torch.manual_seed(0)
    x = torch.randn(shape).contiguous(memory_format=torch.channels_last if nhwc else torch.contiguous_format)
    w, b = torch.randn(5, shape[1], 3, 3), torch.randn(5) if bias else None
    results = []
    for fn in (fastresize.resize_conv2d, fastprobe._plain_resize_conv):
        xs = [t.detach().clone().requires_grad_() for t in (x, w, *([b] if bias else []))]
        y = fn(xs[0], xs[1], xs[2] if bias else None, size, mode)
        (y * torch.linspace(-1, 1, y.numel()).view_as(y)).sum().backward()
        results.append([y.detach(), *(t.grad for t in xs)])
    assert results[0][0].shape == (shape[0], 5, *size)
    for a, b_ in zip(*results):
        assert torch.allclose(a, b_, atol=1e-4, rtol=1e-4), (mode, shape, size)


@pytest.mark.parametrize("upsample", ["bilinear", "nearest"])
@pytest.mark.parametrize("nhwc", [True, False])
def test_resize_conv_decoders_take_the_low_resolution_form_in_inference_and_in_training(plan, upsample, nhwc):
    """Both resize-conv blocks run in the fast form where planned: same decodes, same loss gradients, and the
    memory format the next layers expect (NHWC only where the model runs NHWC)."""
    torch.manual_seed(0)
    base = Plan(infer_channels_last=True, channels_last=nhwc, reason="test")
    model = build_model(ModelSpec("conv_vae", (1, 28, 28), 2, True, upsample=upsample))
    x, z = torch.rand(8, 1, 28, 28), torch.randn(50, 2)
    results = []
    for on in (False, True):
        plan(Plan(**{**base.to_dict(), "resize_conv": on}))
        fastpath.adopt(model).eval()
        fastpath.TAKEN.clear()
        with torch.inference_mode():
            decoded = model.decode_logits(z)
        assert fastpath.TAKEN["resize_conv"] == (2 if on else 0), "both resize-conv blocks, only where planned"
        model.train().zero_grad()
        block = next(m for m in model.modules() if type(m).__name__ == "ResizeConv")
        formats = []
        hook = block.register_forward_hook(lambda m, i, o: formats.append(o.is_contiguous(
            memory_format=torch.channels_last) and not o.is_contiguous()))
        loss_parts(model, x.contiguous(memory_format=fastpath.memory_format(model)), TrainConfig(),
                   torch.Generator().manual_seed(0))["loss"].mean().backward()
        hook.remove()
        assert fastpath.TAKEN["resize_conv"] == (4 if on else 0)
        assert formats == [nhwc]
        results.append([decoded] + [p.grad.clone() for p in model.parameters()])
    for a, b in zip(*results):
        assert torch.allclose(a, b, atol=1e-4, rtol=1e-4)


def test_bf16_training_runs_the_forward_in_bfloat16_and_the_loss_in_float32(plan, mnist):
    """Where the plan chooses it, a conv model's training forward runs under bfloat16 autocast; the objective stays
    float32 and within a few per cent of the float32 one (bfloat16 keeps 8 bits of mantissa)."""
    from aecore.train import TrainConfig, build_seeded, train
    from aecore.catalog import MODELS

    cfg = TrainConfig(epochs=1, batch_size=16, max_steps=2)
    model = build_seeded(MODELS["conv_vae"].spec(mnist.shape), 0)
    x = mnist.test_x[:16]
    exact = loss_parts(model, x, cfg, torch.Generator().manual_seed(0))["loss"]
    low = loss_parts(model, x, cfg, torch.Generator().manual_seed(0), precision=fastpath.bf16.autocast())["loss"]
    assert low.dtype == torch.float32 and torch.allclose(low, exact, rtol=0.05)
    first_loss = {}
    for name, p in (("bf16", Plan(bf16=True, reason="test")), ("fp32", NONE)):
        plan(p)
        fastpath.TAKEN.clear()
        fresh = build_seeded(MODELS["conv_vae"].spec(mnist.shape), 0)
        steps = [e for e in train(fresh, mnist.train_x[:64], mnist.test_x[:16], cfg) if hasattr(e, "loss")]
        assert fastpath.TAKEN["bf16"] == (2 if name == "bf16" else 0)
        assert all(math.isfinite(e.loss) for e in steps)
        first_loss[name] = steps[0].loss
    # the same first batch and weights: the losses differ by bfloat16's rounding only, so it really ran in bf16
    assert first_loss["bf16"] != first_loss["fp32"]
    assert first_loss["bf16"] == pytest.approx(first_loss["fp32"], rel=0.05)


def test_the_bf16_guard_refuses_a_cpu_without_bfloat16_units(monkeypatch):
    monkeypatch.setattr(fastpath.bf16, "cpu_flags", lambda: {"avx2", "fma"})
    assert "no bfloat16 units" in fastpath.bf16.guard()


def test_the_benchmarks_tutorial_reference_runs_plain_pytorch_and_restores_the_plan(plan, mnist):
    plan(ALL)
    model = build_model(ModelSpec("conv_vae", (1, 28, 28), 2, True))
    x = mnist.test_x[:8]
    fastpath.TAKEN.clear()
    with fastpath.plain_pytorch():
        loss_parts(model, x, TrainConfig(), torch.Generator().manual_seed(0))["loss"].mean().backward()
    assert sum(fastpath.TAKEN.values()) == 0, dict(fastpath.TAKEN)
    assert fastpath.plan() is ALL
    loss_parts(model, x, TrainConfig(), torch.Generator().manual_seed(0))["loss"].mean().backward()
    assert fastpath.TAKEN["conv_transpose"] == 2  # the input is NCHW: only the transposed convs' path applies


RELU_MODELS = [ModelSpec("conv_vae", (1, 28, 28), 2, True, upsample=u)
               for u in ("transposed", "bilinear", "subpixel", "transposed4")]
RELU_MODELS += [ModelSpec("conv_ae", (1, 28, 28), 8, False), ModelSpec("lecture_vae", (1, 28, 28), 2, True)]


@pytest.mark.parametrize("spec", RELU_MODELS)
def test_in_place_relus_train_as_out_of_place_ones_on_every_path(plan, spec):
    """The models' ReLUs overwrite their input (less memory traffic: ~6 % of an inference pass). That is only right
    while no layer before a ReLU keeps its own output for the backward pass or returns a view: any fast path that did
    would raise here or change the gradients."""
    plan(ALL)
    torch.manual_seed(0)
    model = fastpath.adopt(build_model(spec)).train()  # NHWC weights and inputs, as training runs them
    x = torch.rand(8, 1, 28, 28).contiguous(memory_format=fastpath.memory_format(model))
    grads = []
    for inplace in (True, False):
        for m in model.modules():
            if isinstance(m, nn.ReLU):
                assert m.inplace or not inplace, "built in place"
                m.inplace = inplace
        model.zero_grad()
        loss_parts(model, x, TrainConfig(), torch.Generator().manual_seed(0))["loss"].mean().backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    for a, b in zip(*grads):
        assert torch.allclose(a, b, atol=1e-6, rtol=1e-5)
