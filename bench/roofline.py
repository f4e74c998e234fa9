"""Roofline of the three training steps: achieved MAC rate against the matmul rate measured in the same run.

    python bench/roofline.py [--device cpu] [--crop 128] [--batch 1] [--steps 6] [--dtype fp32] [--profile]

Parts: the teacher (TCM-small, ``space.teacher_config(64)``), stage 1 (the "paper" preset's g_s, from y_hat)
and stage 2 (the paper's hyperprior path, from y, through the teacher's frozen g_s). Each step runs through
``asymllic.training.loop.run_loop`` (Adam, clipping, the NaN guard, logging), on random crops, in three
variants side by side:

- ``old``: attention as explicit matmuls + bias + masked_fill + softmax (the reference math, kept only here; the
  tests compare SDPA with it) and the per-step check (every gradient and metric read on the host each step);
- ``sdpa``: ``F.scaled_dot_product_attention`` with the cached mask, still the per-step check;
- ``new``: SDPA and the deferred check (one host read per logged row, ``log_every`` 10).

MACs per step: ``asymllic.training.throughput.step_gmacs`` (backward = 2 x forward for trained layers, 1 x for
frozen layers on the gradient path). ``possible``: the measured dense GEMM rate (``matmul_tflops``).
``--profile`` prints torch.profiler's top operators of one ``new`` step of each part.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import space  # noqa: E402
from asymllic.evaluation.metrics import distortion_loss, rd_loss  # noqa: E402
from asymllic.layers import WindowAttention  # noqa: E402
from asymllic.layers.window_attention import shift_seam  # noqa: E402
from asymllic.models import LicCodec  # noqa: E402
from asymllic.training.loop import LoopSpec, run_loop  # noqa: E402
from asymllic.training.throughput import matmul_tflops, median_seconds, step_gmacs  # noqa: E402

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def _explicit(m: WindowAttention, x: torch.Tensor) -> torch.Tensor:
    """The attention as it was computed before SDPA: explicit matmuls, bias gathered and seam mask built per call
    (also the reference the SDPA path is tested against, tests/test_speed.py)."""
    b, h, w, c = x.shape
    ws = m.window
    ph, pw = (-h) % ws, (-w) % ws
    if ph or pw:
        x = F.pad(x, (0, 0, 0, pw, 0, ph))
    hp, wp = h + ph, w + pw
    if m.shifted:
        x = torch.roll(x, shifts=(-(ws // 2), -(ws // 2)), dims=(1, 2))
    nh, nw = hp // ws, wp // ws
    tokens = x.reshape(b, nh, ws, nw, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(b, nh * nw, ws * ws, c)
    qkv = m.embedding_layer(tokens).reshape(b, nh * nw, ws * ws, 3, m.heads, m.head_dim)
    q, k, v = qkv.permute(3, 0, 4, 1, 2, 5)
    sim = torch.matmul(q, k.transpose(-1, -2)) * m.scale
    sim = sim + m.relative_position_params.flatten(1)[:, m.relative_index][:, None]
    if m.shifted:
        sim = sim.masked_fill(shift_seam(nh, nw, ws, x.device), float("-inf"))
    out = torch.matmul(sim.softmax(dim=-1), v)
    out = m.linear(out.permute(0, 2, 3, 1, 4).reshape(b, nh * nw, ws * ws, c))
    out = out.reshape(b, nh, nw, ws, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(b, hp, wp, c)
    if m.shifted:
        out = torch.roll(out, shifts=(ws // 2, ws // 2), dims=(1, 2))
    return out[:, :h, :w] if (ph or pw) else out


@contextmanager
def explicit_attention(model: torch.nn.Module):
    """Every WindowAttention inside ``model`` computed by the explicit math while active."""
    attns = [m for m in model.modules() if isinstance(m, WindowAttention)]
    for m in attns:
        m.forward = lambda x, _m=m: _explicit(_m, x)
    try:
        yield
    finally:
        for m in attns:
            del m.forward


def build(part: str, crop: int, batch: int, device: torch.device):
    """(model, trained params, aux params, step_fn, config counted) for one part, on random data."""
    torch.manual_seed(0)
    teacher = space.teacher_config(64)
    paper = space.get_preset("paper")
    x = torch.rand(batch, 3, crop, crop, device=device)
    y = torch.randn(batch, 320, crop // 16, crop // 16, device=device) * 4
    if part == "teacher":
        model = LicCodec(teacher).to(device)
        params = [p for n, p in model.named_parameters() if not n.endswith("quantiles")]
        aux = [p for n, p in model.named_parameters() if n.endswith("quantiles")]
        return model, params, aux, lambda step: rd_loss(model(x), x, 0.0067), teacher
    if part == "stage1":
        from dataclasses import replace

        cfg = replace(teacher, synthesis=paper.synthesis)
        model = LicCodec(cfg).to(device)
        for p in model.parameters():
            p.requires_grad_(False)
        params = list(model.g_s.parameters())
        for p in params:
            p.requires_grad_(True)
        y_hat = torch.round(y)
        return model, params, [], lambda step: distortion_loss(model.g_s(y_hat), x, 0.0067), cfg
    from dataclasses import replace

    from asymllic.models import HYPERPRIOR_PARTS

    cfg = replace(teacher, hyperprior=paper.hyperprior)
    model = LicCodec(cfg).to(device)
    trained = ("h_a",) + HYPERPRIOR_PARTS
    params, aux = [], []
    for n, p in model.named_parameters():
        p.requires_grad_(n.split(".", 1)[0] in trained)
        if p.requires_grad:
            (aux if n.endswith("quantiles") else params).append(p)

    def step_fn(step):
        out = model.entropy_forward(y)
        return rd_loss({"x_hat": model.g_s(out["y_hat"]), "likelihoods": out["likelihoods"]}, x, 0.0067)

    return model, params, aux, step_fn, cfg


def run(part: str, variant: str, args, device: torch.device) -> float:
    """Median seconds per step of ``variant`` (from the loop's own log rows, the first row left out)."""
    model, params, aux, step_fn, _ = build(part, args.crop, args.batch, device)
    with tempfile.TemporaryDirectory() as tmp:
        spec = LoopSpec(part, Path(tmp), model, params, step_fn, steps=args.steps, lr=1e-4, lr_drop_at=args.steps,
                        lr_after=1e-5, checkpoint_every=10 ** 9, aux_params=aux, progress=False, device=device,
                        precision=args.dtype, batch=args.batch, log_every=max(1, args.steps - 1),
                        check="deferred" if variant == "new" else "every_step")
        if variant == "old":
            with explicit_attention(model):
                run_loop(spec)
        else:
            run_loop(spec)
        rows = [json.loads(line) for line in (Path(tmp) / "log.jsonl").read_text().splitlines()]
    steady = [r for r in rows[1:]] or rows  # the first row is the first step alone: warm-up
    if variant == "new":
        return sum(r["seconds"] * r["steps"] for r in steady) / sum(r["steps"] for r in steady)
    return median_seconds([r["seconds"] for r in steady])


def profile(part: str, args, device: torch.device) -> str:
    from torch.profiler import ProfilerActivity, profile as torch_profile

    model, params, aux, step_fn, _ = build(part, args.crop, args.batch, device)
    opt = torch.optim.Adam(params, lr=1e-4)

    def step():
        loss = step_fn(0)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()

    step()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with torch_profile(activities=activities) as prof:
        step()
    key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    return prof.key_averages().table(sort_by=key, row_limit=14)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--dtype", choices=sorted(DTYPES), default="fp32")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--parts", nargs="*", default=["teacher", "stage1", "stage2"])
    ap.add_argument("--variants", nargs="*", default=["old", "sdpa", "new"])
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    peak = matmul_tflops(device, DTYPES[args.dtype]) * 1e3  # GFLOP/s
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"device {device}, {args.dtype}, crop {args.crop}, batch {args.batch}, {args.steps} steps, "
          f"{args.threads} thread(s), load {load:.2f}; measured GEMM: {peak:.1f} GFLOP/s")
    print("| part | variant | GMAC/step | s/step | achieved GFLOP/s | possible GFLOP/s | achieved/possible |")
    print("|---|---|---|---|---|---|---|")
    for part in args.parts:
        cfg = {"teacher": space.teacher_config(64)}.get(part)
        if cfg is None:
            from dataclasses import replace

            paper = space.get_preset("paper")
            t = space.teacher_config(64)
            cfg = replace(t, synthesis=paper.synthesis) if part == "stage1" else replace(t, hyperprior=paper.hyperprior)
        gmacs = step_gmacs(cfg, part, args.crop, args.batch)
        for variant in args.variants:
            seconds = run(part, variant, args, device)
            achieved = 2 * gmacs / seconds
            print(f"| {part} | {variant} | {gmacs:.3f} | {seconds:.4f} | {achieved:.2f} | {peak:.1f} | "
                  f"{achieved / peak:.1%} |", flush=True)
    if args.profile:
        for part in args.parts:
            print(f"\n### profile: {part}, one new step\n")
            print(profile(part, args, device))
    return 0


if __name__ == "__main__":
    sys.exit(main())
