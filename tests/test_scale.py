"""Running at users' scale, checked on this CPU: device choice, mixed precision, streaming data, the latent cache."""
import json
import subprocess
import sys
import threading
import time

import numpy as np
import psutil
import pytest
import torch
from PIL import Image

import space
from asymllic.data import BAD_CHECK_AFTER, Batches, DataError, list_images, resolve
from asymllic.device import DeviceError, autocast, pick_device, pick_precision
from asymllic.models import LicCodec
from asymllic.training import StageRun, get_schedule, train_stage1, train_teacher
from asymllic.training.latents import CacheWriter, LatentCache, bytes_per_crop, plan_latents
from asymllic.training.loop import STATE_FILE
from conftest import ROOT, photo, script_module
from asymllic_cli import main

SMOKE = get_schedule("smoke")
no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")


@no_cuda
def test_cuda_asked_for_without_a_gpu_is_one_line(tmp_path, capsys):
    with pytest.raises(DeviceError, match="no CUDA device"):
        pick_device("cuda:1")
    assert pick_device("auto").type == "cpu" and pick_precision("auto", torch.device("cpu")) == "fp32"
    for argv in (["teacher", "train", "--schedule", "smoke", "--device", "cuda", "--out", str(tmp_path / "t")],
                 ["train", "stage1", "--teacher", "x.pt", "--decoder", "paper", "--device", "cuda:0"],
                 ["search", "--study", "s", "--schedule", "smoke", "--device", "cuda", "--root", str(tmp_path),
                  "--teacher", __file__]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "no CUDA device" in err, err
    assert not (tmp_path / "t").exists()  # refused before anything was written


def test_entropy_path_stays_fp32_under_bf16_autocast():
    torch.manual_seed(0)
    model = LicCodec(space.get_preset("paper")).train()
    x = torch.rand(1, 3, 128, 128)
    convs = []
    for m in model.g_s.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            m.register_forward_hook(lambda mod, inputs, output: convs.append(output.dtype))
    with autocast("cpu", "bf16"):  # the forward pass, one piece at a time (g_a once: bf16 on a CPU is slow)
        y = model.g_a(x)
        assert y.dtype == torch.bfloat16
        ent = model.entropy_forward(y)
        model.g_s(ent["y_hat"])
        assert convs and set(convs) == {torch.bfloat16}  # the networks do run in bf16 (GDN alone in fp32)
    assert all(lk.dtype == torch.float32 for lk in ent["likelihoods"].values())
    assert ent["y_hat"].dtype == torch.float32
    # the hard-rounded latents are integers + fp32 means: rounding saw fp32 values
    model.eval()
    with torch.no_grad(), autocast("cpu", "bf16"):
        y_hat = model.entropy_forward(y.detach(), likelihoods=False)["y_hat"]
    assert y_hat.dtype == torch.float32 and torch.isfinite(y_hat).all()


def test_bf16_training_steps_run_and_states_are_device_independent(tmp_path):
    run = StageRun(tmp_path / "t", tmp_path / "cache", progress=False, device="cpu", precision="bf16", loader_workers=0)
    ckpt = train_teacher(space.teacher_config(64), SMOKE, 0.0067, None, run, steps=1)
    log = [json.loads(line) for line in (tmp_path / "t" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1] and all(np.isfinite(r["loss"]) and r["samples_per_s"] > 0 for r in log)
    for path in (ckpt, tmp_path / "t" / STATE_FILE):  # every tensor saved on the CPU: loads on any machine
        state = torch.load(path, map_location="cpu", weights_only=True)
        tensors = []

        def walk(o):
            if isinstance(o, torch.Tensor):
                tensors.append(o)
            elif isinstance(o, dict):
                [walk(v) for v in o.values()]
            elif isinstance(o, (list, tuple)):
                [walk(v) for v in o]
        walk(state)
        assert tensors and all(t.device.type == "cpu" for t in tensors)


def _jpegs(folder, n: int, side: int = 256) -> list:
    """``n`` distinct real-photo JPEGs (crops of scikit-image's astronaut at shifted offsets)."""
    folder.mkdir(parents=True, exist_ok=True)
    src = photo("astronaut", (512, 512))
    paths = []
    for i in range(n):
        top, left = (i * 7) % (512 - side), (i * 13) % (512 - side)
        p = folder / f"{i:05d}.jpg"
        Image.fromarray(src[top:top + side, left:left + side]).save(p, quality=80)
        paths.append(p)
    return paths


def _peak_rss_growth(fn) -> int:
    proc = psutil.Process()
    base = proc.memory_info().rss
    peak = [base]
    done = threading.Event()

    def poll():
        while not done.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.005)

    t = threading.Thread(target=poll)
    t.start()
    try:
        fn()
    finally:
        done.set()
        t.join()
    return peak[0] - base


def test_streaming_memory_does_not_grow_with_the_file_count(tmp_path):
    _jpegs(tmp_path / "many", 3000)
    (tmp_path / "few").mkdir()
    for p in sorted((tmp_path / "many").iterdir())[:300]:
        (tmp_path / "few" / p.name).symlink_to(p)
    growth = {}
    for name in ("few", "many"):
        images = list_images(tmp_path / name)
        steps = len(images.paths) // 8  # every file's worth of samples once
        batches = Batches(images, 128, 8, steps, seed=0, workers=0)
        def iterate():
            for s in range(steps):
                batches(s)  # used and dropped, as a training step does

        growth[name] = _peak_rss_growth(iterate)
        assert batches.report.summary()["files_opened"] > 0.5 * len(images.paths)
    mib = {k: v / 2**20 for k, v in growth.items()}
    # decoded and kept as float32, 3,000 such photos would be 750 MiB
    assert mib["many"] < 300 and mib["many"] < mib["few"] + 50, mib


def test_streamed_batches_are_reproducible_across_workers_and_resumes(tmp_path):
    images = list_images(tmp_path) if _jpegs(tmp_path, 20, 160) else None
    a = Batches(images, 128, 4, 8, seed=3, workers=2)
    first = [a(s) for s in range(8)]
    b = Batches(images, 128, 4, 8, seed=3, workers=0)
    assert torch.equal(b(5), first[5]) and torch.equal(b(6), first[6])  # a resume at step 5
    assert not torch.equal(first[0], first[1])


def test_bad_small_and_listed_files(tmp_path):
    good = _jpegs(tmp_path / "set", BAD_CHECK_AFTER + 100, 160)
    (tmp_path / "set" / "broken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    Image.fromarray(photo("astronaut", (64, 64))).save(tmp_path / "set" / "tiny.png")
    # a list file: one path per line, relative to the list's folder
    (tmp_path / "list.txt").write_text("# training list\n" + "\n".join(f"set/{p.name}" for p in
                                       sorted((tmp_path / "set").iterdir())) + "\n")
    images = list_images(tmp_path / "list.txt")
    assert len(images.paths) == len(good) + 2
    import io
    from contextlib import redirect_stderr

    log = io.StringIO()
    batches = Batches(images, 128, 16, 40, seed=0, workers=0)
    with redirect_stderr(log):
        for s in range(40):
            assert batches(s).shape == (16, 3, 128, 128)
    summary = batches.report.summary()
    assert summary["bad_files"] == 1 and summary["small_files"] == 1, summary
    assert "broken.jpg" in log.getvalue() and "tiny.png" in log.getvalue() and "smaller than" in log.getvalue()
    # more than 1 % bad files stops the run with one clear line
    for i in range(10):
        (tmp_path / "set" / f"bad{i}.jpg").write_bytes(b"garbage")
    worse = Batches(list_images(tmp_path / "set"), 128, 16, 40, seed=0, workers=2)
    with pytest.raises(DataError, match=r"not readable images \(more than 1%\)") as e, redirect_stderr(io.StringIO()):
        for s in range(40):
            worse(s)
    assert "\n" not in str(e.value)
    with pytest.raises(DataError, match="no such data folder"):
        resolve(str(tmp_path / "missing"), "train")


def test_cache_policy_and_on_the_fly_stage(tmp_path, smoke_teacher, capsys):
    cpu, paper = get_schedule("cpu"), get_schedule("paper")
    assert plan_latents(SMOKE.search_steps, SMOKE.batch, SMOKE.crop, SMOKE.cache_crops, 4, 4).mode == "cache"
    assert plan_latents(cpu.stage1_steps, cpu.batch, cpu.crop, cpu.cache_crops, 4, 4).mode == "cache"
    for steps in (paper.stage1_steps, paper.search_steps):
        plan = plan_latents(steps, paper.batch, paper.crop, paper.cache_crops, 4, 4)
        assert plan.mode == "on the fly" and "--cache-gib 4" in plan.reason
    assert bytes_per_crop(256) == 3 * 256 * 256 + 4 * 320 * 16 * 16
    # a stage that may not cache runs the frozen parts on the fly, and says so
    run = StageRun(tmp_path / "s1", tmp_path / "cache", progress=False, device="cpu", loader_workers=0, cache_gib=0)
    ckpt = train_stage1(smoke_teacher, space.get_preset("paper"), SMOKE, 0.0067, None, run)
    assert ckpt.is_file() and "on the fly" in capsys.readouterr().err
    assert not (tmp_path / "cache").exists()


def test_memory_mapped_cache_is_shared_by_two_processes(tmp_path):
    count, crop = 400, 256  # 400 crops x 0.5 MiB = 200 MiB
    writer = CacheWriter(tmp_path / "cache", count, crop)
    rng = np.random.default_rng(0)
    lat = (32, 320, crop // 16, crop // 16)
    for _ in range(count // 32 + 1):
        n = min(32, count - writer.filled)
        if n <= 0:
            break
        writer.add(rng.integers(0, 255, (n, 3, crop, crop), dtype=np.uint8),
                   rng.standard_normal(lat, dtype=np.float32)[:n].astype(np.float16),
                   rng.standard_normal(lat, dtype=np.float32)[:n].astype(np.float16))
    cache = writer.close({"count": count})
    size = sum(a.nbytes for a in cache.arrays.values())
    code = (
        "import sys, numpy as np, hashlib; sys.path.insert(0, sys.argv[2])\n"
        "from asymllic.training.latents import LatentCache\n"
        "def anon(): return next(int(l.split()[1]) * 1024 for l in open('/proc/self/status') if l.startswith('RssAnon'))\n"
        "base = anon()\n"
        "c = LatentCache(sys.argv[1]); h = hashlib.sha256()\n"
        "for i in range(0, len(c), 16):\n"
        "    x, y, yh = c.rows(np.arange(i, min(i + 16, len(c))))\n"
        "    h.update(x.numpy().tobytes()); h.update(yh.numpy().tobytes())\n"
        "print(h.hexdigest(), (anon() - base) / 2**20)\n")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(cache.path), str(ROOT)], stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=300)[0].split() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert outs[0][0] == outs[1][0]  # both read the same crops
    # each read all 200 MiB, but as file pages the kernel shares (and may drop), not as its own memory
    for _, private_mib in outs:
        assert float(private_mib) < 0.25 * size / 2**20, (outs, size)
    assert len(LatentCache(cache.path)) == count


def test_gpu_check_runs_in_cpu_mode_without_ray_or_plotly(tmp_path):
    """scripts/gpu_check.sh, the script a GPU machine runs, in its CPU mode; ray and plotly made unimportable
    (the GPU machine has neither)."""
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text("import sys\nfor m in ('ray', 'plotly', 'kaleido'):\n    sys.modules[m] = None\n")
    env = {**__import__("os").environ, "PYTHON": sys.executable, "PYTHONPATH": str(hide)}
    env.pop("OUT", None)
    proc = subprocess.run(["bash", "scripts/gpu_check.sh", "--device", "cpu", "--steps", "2", "--crop", "128",
                           "--batch", "1", "--search-schedule", "smoke", "--loader-workers", "0", "--out", str(tmp_path / "out"),
                           "--precisions", "fp32", "--budget-s", "3600"],  # bf16 on the CPU: test_bf16_training_steps_run_...
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    table = (tmp_path / "out" / "gpu_check.md").read_text()
    rows = json.loads((tmp_path / "out" / "gpu_check.json").read_text())["rows"]
    checks = [r["check"] for r in rows]
    assert sum(c.startswith("teacher") for c in checks) == 1 and sum(c.startswith("stage") for c in checks) == 4
    assert any(c.startswith("search") for c in checks) and any("decoded there and on the CPU" in c for c in checks)
    assert all(r["status"] == "ok" for r in rows) and "bit-exact" in table
    assert {r["latents"] for r in rows if r["check"].startswith("stage")} == {"cache", "on the fly"}
    assert all(r.get("precision") and r.get("tf32") for r in rows)  # what each row ran with
    ends = [line for line in proc.stdout.splitlines() if line.startswith(("ok: ", "NOT OK: "))]
    assert len(ends) == len(rows) and all(line.startswith("ok: ") for line in ends), ends


def test_gpu_check_keeps_its_table_when_the_budget_runs_out(tmp_path):
    """A row still running at the budget is stopped, later rows are skipped, and the table on disk says so; a broad
    ``except Exception`` inside the row (a refused file, a failed trial) does not swallow the stop."""
    import time

    import torch

    gpu_check = script_module("scripts/gpu_check.py")
    assert not issubclass(gpu_check.OverBudget, Exception)

    def slow():
        try:
            time.sleep(30)
        except Exception:  # noqa: BLE001 - what rows do
            return {"note": "refused"}

    table = gpu_check.Table(torch.device("cpu"), tmp_path, {"device": "cpu"}, budget_s=2, min_row_s=0.5)
    table.run("quick", lambda: {"note": "done"})
    assert json.loads((tmp_path / "gpu_check.json").read_text())["rows"][0]["status"] == "ok"  # written at once
    table.run("slow", slow)
    table.run("next", lambda: {"note": "never"})
    rows = json.loads((tmp_path / "gpu_check.json").read_text())["rows"]
    assert [r["status"].split(":")[0] for r in rows] == ["ok", "stopped", "skipped"]
    assert rows[1]["wall_s"] < 10 and "| slow |" in (tmp_path / "gpu_check.md").read_text()
    assert "note" not in rows[1]
