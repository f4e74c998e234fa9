"""Speed work kept honest: SDPA window attention equals the explicit math, the one-pass counter equals the
two-pass reference, the training loop syncs rarely yet still stops a diverging run, and the throughput helpers."""
import json
import math

import pytest
import torch

import space
from asymllic.layers import ConvTransBlock, SwinStack, SWAtten, TransformerBlock, WindowAttention, WindowTransformerBlock
from conftest import script_module


EXPLICIT = script_module("bench/roofline.py").explicit_attention  # the explicit math, while active


def test_relative_index_is_the_offset_table():
    """The bias index, worked out apart from the layer: (dy + ws - 1) * (2 ws - 1) + (dx + ws - 1)."""
    ws = 4
    coords = torch.stack(torch.meshgrid(torch.arange(ws), torch.arange(ws), indexing="ij")).flatten(1)
    rel = coords[:, :, None] - coords[:, None, :] + ws - 1
    assert torch.equal(WindowAttention(32, 8, ws, False).relative_index, rel[0] * (2 * ws - 1) + rel[1])


BLOCKS = {
    "attention": lambda s: WindowAttention(32, 8, 4, s),
    "transformer": lambda s: TransformerBlock(32, 8, 4, s),
    "wtb": lambda s: WindowTransformerBlock(32, 8, 4, s),
    "convtrans": lambda s: ConvTransBlock(16, 8, 4, s),
    "swinstack": lambda s: SwinStack(32, 8, 4, depth=2, shift=s),
    "swatten": lambda s: SWAtten(48, 32, 8, 4, depth=2, res_units=1, shift=s),
}
CHANNELS_LAST = {"attention", "transformer"}


@pytest.mark.parametrize("shifted", [False, True])
@pytest.mark.parametrize("block", sorted(BLOCKS))
@pytest.mark.parametrize("size", [(8, 12), (9, 6)])  # a multiple of the window, and a padded one
def test_sdpa_attention_equals_the_explicit_math(block, shifted, size):
    torch.manual_seed(0)
    m = BLOCKS[block](shifted)
    c = 48 if block == "swatten" else 32
    shape = (2, *size, c) if block in CHANNELS_LAST else (2, c, *size)
    x = torch.randn(shape, requires_grad=True)
    out = m(x)
    out.square().sum().backward()
    grads = [p.grad.clone() for p in m.parameters()] + [x.grad.clone()]
    m.zero_grad()
    x.grad = None
    with EXPLICIT(m):
        ref = m(x)
        ref.square().sum().backward()
    assert torch.allclose(out, ref, atol=1e-5, rtol=1e-4)
    for g, r in zip(grads, [p.grad for p in m.parameters()] + [x.grad]):
        assert torch.allclose(g, r, atol=1e-4, rtol=1e-3)
    m.eval()
    with torch.no_grad():  # inference keeps its mask between calls; the result stays the same
        a, b = m(x), m(x)
        with EXPLICIT(m):
            r = m(x)
    assert torch.equal(a, b) and torch.allclose(a, r, atol=1e-5, rtol=1e-4)


def test_inference_mask_follows_parameter_updates():
    torch.manual_seed(0)
    m = WindowAttention(16, 8, 4, shifted=True).eval()
    x = torch.randn(1, 8, 8, 16)
    with torch.no_grad():
        before = m(x)
        m.relative_position_params.add_(1.0)  # an optimiser step or a loaded checkpoint changes the table
        after = m(x)
        with EXPLICIT(m):
            ref = m(x)
    assert not torch.allclose(before, after) and torch.allclose(after, ref, atol=1e-5, rtol=1e-4)


def _reference_counter():
    return script_module("bench/counting.py").reference_count


@pytest.mark.parametrize("name", ["paper", "hp/slices_2"])
def test_one_pass_counter_equals_the_two_pass_reference(name):
    from asymllic.complexity import count

    reference = _reference_counter()
    cfg = space.get_preset(name)
    for convention in ("exact", "thop"):
        new, old = count(cfg, (256, 192), convention), reference(cfg, (256, 192), convention)
        assert new.components == old.components, convention
        assert [(l.name, l.type, l.params, l.macs) for l in new.layers] == \
            [(l.name, l.type, l.params, l.macs) for l in old.layers], convention
    # the activation peak is the exact pass's (thop's own bookkeeping buffers no longer add to it)
    assert count(cfg, (256, 192), "thop").activation_bytes == old_exact_peak(reference, cfg)


def old_exact_peak(reference, cfg):
    return reference(cfg, (256, 192), "exact").activation_bytes


def test_counter_replays_repeated_blocks_and_reuses_reports():
    from asymllic import complexity

    cfg = space.get_preset("teacher")
    a = complexity.count(cfg, (256, 256), "exact")
    assert complexity.count(cfg, (256, 256), "thop").total.params < a.total.params  # the other convention, kept
    b = complexity.count(cfg, (256, 256), "exact")
    assert a.to_dict() == b.to_dict() and a.layers is not b.layers  # a copy: the caller may change it
    assert any(v for v in complexity._UNITS.values())  # replayable units were recorded


def _linear_spec(tmp_path, nan_at, **kw):
    from asymllic.training.loop import LoopSpec

    torch.manual_seed(0)
    model = torch.nn.Linear(2, 2)
    w = torch.ones(1, 2)

    def step_fn(step):
        out = model(w)
        if step == nan_at:  # a finite loss whose gradient is NaN
            out = out + torch.sqrt(model.weight.sum() * 0)  # sqrt at 0: infinite slope, times 0: NaN
        return {"loss": (out ** 2).sum(), "mse": (out ** 2).mean()}

    return model, LoopSpec("t", tmp_path, model, list(model.parameters()), step_fn, lr=1e-2, lr_drop_at=100,
                           lr_after=1e-3, progress=False, **kw)


def test_a_nan_gradient_between_log_points_stops_the_run_with_the_last_good_weights(tmp_path):
    from asymllic.training import TrainingDiverged
    from asymllic.training.loop import STATE_FILE, run_loop

    model, spec = _linear_spec(tmp_path, nan_at=6, steps=20, checkpoint_every=4, log_every=10)
    with pytest.raises(TrainingDiverged, match=r"non-finite gradient at step 6.*last good checkpoint \(step 4\)"):
        run_loop(spec)
    state = torch.load(tmp_path / STATE_FILE, weights_only=True)
    assert state["step"] == 4  # the check before the step-8 checkpoint found it: nothing saved after the bad step
    assert all(torch.equal(v, state["model"][k]) for k, v in model.state_dict().items())  # weights put back
    rows = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [(r["step"], r["steps"]) for r in rows] == [(1, 1), (4, 3)]


def test_rows_cover_log_every_steps_and_match_the_every_step_check(tmp_path):
    from asymllic.training.loop import run_loop

    model_a, a = _linear_spec(tmp_path / "a", nan_at=-1, steps=25, checkpoint_every=100, log_every=10)
    model_b, b = _linear_spec(tmp_path / "b", nan_at=-1, steps=25, checkpoint_every=100, check="every_step")
    last_a, last_b = run_loop(a), run_loop(b)
    rows = [json.loads(line) for line in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    assert [(r["step"], r["steps"]) for r in rows] == [(1, 1), (10, 9), (20, 10), (25, 5)]
    assert all(r["seconds"] > 0 and math.isfinite(r["loss"]) and "psnr" in r for r in rows)
    every = [json.loads(line) for line in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    assert len(every) == 25 and last_b["loss"] == pytest.approx(every[-1]["loss"])
    assert rows[-1]["loss"] == pytest.approx(sum(r["loss"] for r in every[20:]) / 5, rel=1e-5)
    assert all(torch.equal(p, q) for p, q in zip(model_a.parameters(), model_b.parameters()))  # same training
