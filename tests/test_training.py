"""The protocol end to end at the smoke schedule, resume after an interruption, divergence and bad data."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import space
from asymllic.codec.checkpoint import base_of, load_codec, new_codec, save_codec, save_self_contained
from asymllic.codec.coding import reconstruct
from asymllic.data import DataError, resolve, scan
from asymllic.errors import CheckpointError
from asymllic.images import read_image, to_uint8
from asymllic.training import StageRun, TrainingDiverged, combine, get_schedule, train_stage1, train_stage2
from asymllic.training.loop import STATE_FILE, LoopSpec, run_loop
from conftest import photo, run_cli

SMOKE = get_schedule("smoke")


@pytest.fixture(scope="module")
def protocol(tmp_path_factory, smoke_teacher):
    root = tmp_path_factory.mktemp("protocol")
    cache = root / "cache"
    teacher = smoke_teacher
    paper = space.get_preset("paper")
    s1 = train_stage1(teacher, paper, SMOKE, 0.0067, None, StageRun(root / "s1", cache, progress=False))
    s2 = train_stage2(teacher, paper, SMOKE, 0.0067, None, StageRun(root / "s2", cache, progress=False))
    asym = combine(s1, s2, root / "asym.pt")
    return {"root": root, "teacher": teacher, "s1": s1, "s2": s2, "asym": asym, "cache": cache}


def test_stages_train_only_their_parts(protocol):
    t, s1, s2, a = (load_codec(protocol[k]) for k in ("teacher", "s1", "s2", "asym"))
    paper = space.get_preset("paper")
    assert s1.config.synthesis == paper.synthesis and s1.config.hyperprior == t.config.hyperprior
    assert s2.config.hyperprior == paper.hyperprior and s2.config.synthesis == t.config.synthesis
    assert a.config == paper
    for name, tensor in t.g_a.state_dict().items():  # the encoder never moves
        assert torch.equal(tensor, s1.g_a.state_dict()[name]) and torch.equal(tensor, a.g_a.state_dict()[name])
    for name, tensor in t.h_a.state_dict().items():  # stage 1 freezes h_a; stage 2 trains it
        assert torch.equal(tensor, s1.h_a.state_dict()[name])
    assert any(not torch.equal(v, s2.h_a.state_dict()[k]) for k, v in t.h_a.state_dict().items())
    assert all(torch.equal(v, a.g_s.state_dict()[k]) for k, v in s1.g_s.state_dict().items())
    assert all(torch.equal(v, a.h_mean_s.state_dict()[k]) for k, v in s2.h_mean_s.state_dict().items())
    # stage 1's cache exists, keyed by the teacher's weights, complete (its meta is written last)
    assert list(protocol["cache"].glob("*/*/meta.json")) and list(protocol["cache"].glob("*/*/y_hat.npy"))


def test_stage_checkpoints_hold_only_their_trained_parts(protocol, tmp_path):
    teacher_size = Path(protocol["teacher"]).stat().st_size
    assert base_of(protocol["s1"]) == (Path(protocol["teacher"]).resolve(), ("g_s",))
    assert Path(protocol["s1"]).stat().st_size < teacher_size / 5  # g_s only: the frozen rest is the teacher's
    assert base_of(protocol["asym"])[0] == Path(protocol["teacher"]).resolve()
    full = save_self_contained(protocol["asym"], tmp_path / "full.pt")  # what an export writes
    assert base_of(full) == (None, ())
    a, f = load_codec(protocol["asym"]), load_codec(full)
    assert all(torch.equal(v, f.state_dict()[k]) for k, v in a.state_dict().items())
    # a moved or changed teacher is one clear line, never wrong weights
    teacher = tmp_path / "teacher.pt"
    teacher.write_bytes(Path(protocol["teacher"]).read_bytes())
    part = save_codec(load_codec(protocol["s1"]), tmp_path / "part.pt", base=teacher, parts=("g_s",))
    s1, back = load_codec(protocol["s1"]), load_codec(part)
    assert all(torch.equal(v, back.state_dict()[k]) for k, v in s1.state_dict().items())
    save_codec(new_codec(space.teacher_config(64), seed=1), teacher)
    with pytest.raises(CheckpointError, match="changed since"):
        load_codec(part)
    teacher.unlink()
    with pytest.raises(CheckpointError, match="which is missing"):
        load_codec(part)
    assert load_codec(full).config == space.get_preset("paper")  # the export needs nothing else


def test_stage2_through_the_stage1_decoder_is_the_sequential_reading(protocol, tmp_path):
    s1 = load_codec(protocol["s1"])
    seq = train_stage2(protocol["teacher"], space.get_preset("paper"), SMOKE, 0.0067, None,
                       StageRun(tmp_path / "seq", protocol["cache"], progress=False), synthesis_from=protocol["s1"])
    m = load_codec(seq)
    assert m.config == space.get_preset("paper")  # the light g_s and the light hyperprior path
    assert all(torch.equal(v, m.g_s.state_dict()[k]) for k, v in s1.g_s.state_dict().items())  # g_s stayed frozen
    assert any(not torch.equal(v, m.h_mean_s.state_dict()[k])
               for k, v in load_codec(protocol["s2"]).h_mean_s.state_dict().items())  # another path than via the teacher
    run_cli("train", "stage2", "--teacher", protocol["teacher"], "--hyperprior", "paper", "--synthesis-from",
            protocol["s1"], "--schedule", "smoke", "--out", tmp_path / "cli", "--cache", protocol["cache"], "--quiet")
    assert load_codec(tmp_path / "cli" / "codec.pt").config == space.get_preset("paper")


def test_combined_codec_round_trips_across_processes(protocol, tmp_path):
    img = tmp_path / "x.png"
    Image.fromarray(photo("chelsea", (150, 100))).save(img)
    run_cli("compress", img, tmp_path / "x.alic", "--model", protocol["asym"])
    run_cli("decompress", tmp_path / "x.alic", tmp_path / "y.png", "--model", protocol["asym"], process=True)
    expected = to_uint8(reconstruct(load_codec(protocol["asym"]), read_image(img)))
    assert np.array_equal(np.asarray(Image.open(tmp_path / "y.png")), expected)


def test_eval_writes_compressai_json(protocol, tmp_path):
    out = tmp_path / "eval.json"
    run_cli("eval", protocol["asym"], protocol["teacher"], "--max-side", "128", "--jpeg", "--out", out, "--quiet")
    r = json.loads(out.read_text())
    for key in ("psnr-rgb", "ms-ssim-rgb", "bpp", "encoding_time", "decoding_time", "estimated_bpp", "jpeg-psnr-rgb"):
        assert len(r["results"][key]) == 2, key
    assert r["results"]["bpp"] == sorted(r["results"]["bpp"])
    assert all(p["results"]["psnr-rgb"][0] > 0 for p in r["per_checkpoint"])
    bd = run_cli("bdrate", out, "--anchor", out)
    assert "+0.00 %" in bd.stdout or "-0.00 %" in bd.stdout


def test_resume_after_interruption_matches_an_uninterrupted_run(tmp_path):
    def spec(run_dir, stop_at=None):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.GELU(), torch.nn.Conv2d(8, 3, 3, padding=1))

        def step_fn(step):
            if stop_at is not None and step == stop_at:
                raise KeyboardInterrupt  # as a kill between checkpoints
            g = torch.Generator().manual_seed(step)
            x = torch.rand(2, 3, 16, 16, generator=g)
            return {"loss": ((model(x) - x) ** 2).mean()}

        return model, LoopSpec("t", run_dir, model, list(model.parameters()), step_fn, steps=6, lr=1e-2,
                               lr_drop_at=4, lr_after=1e-3, checkpoint_every=2, progress=False)

    ref_model, ref = spec(tmp_path / "ref")
    run_loop(ref)
    _, broken = spec(tmp_path / "run", stop_at=3)
    with pytest.raises(KeyboardInterrupt):
        run_loop(broken)
    assert torch.load(tmp_path / "run" / STATE_FILE, weights_only=True)["step"] == 2
    model, resumed = spec(tmp_path / "run")
    run_loop(resumed)
    for a, b in zip(ref_model.state_dict().values(), model.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6)


def test_cli_resumes_a_killed_teacher_run(tmp_path):
    out = tmp_path / "t"
    # a run that stops after its first checkpoint, as a killed one does, then the same command again
    run_cli("teacher", "train", "--schedule", "smoke", "--steps", "2", "--out", out, "--quiet")
    assert torch.load(out / STATE_FILE, weights_only=True)["step"] == 2
    run_cli("teacher", "train", "--schedule", "smoke", "--steps", "3", "--out", out, "--quiet")
    steps = [json.loads(line)["step"] for line in (out / "log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3]


def test_divergence_stops_with_the_last_good_checkpoint(tmp_path):
    model = torch.nn.Linear(2, 2)
    calls = {"n": 0}

    def step_fn(step):
        calls["n"] += 1
        loss = (model(torch.ones(1, 2)) ** 2).sum()
        return {"loss": loss * float("nan") if step >= 2 else loss}

    spec = LoopSpec("t", tmp_path, model, list(model.parameters()), step_fn, steps=5, lr=1e-2, lr_drop_at=5,
                    lr_after=1e-3, checkpoint_every=1, progress=False)
    with pytest.raises(TrainingDiverged, match=r"loss is nan at step 2.*last good checkpoint \(step 2\)"):
        run_loop(spec)
    assert torch.load(tmp_path / STATE_FILE, weights_only=True)["step"] == 2


def test_bad_data(tmp_path):
    with pytest.raises(DataError, match="no such data folder"):
        scan(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no usable images"):
        scan(tmp_path / "empty")
    mixed = tmp_path / "mixed" / "sub"
    mixed.mkdir(parents=True)
    Image.fromarray(photo()).save(mixed / "good.png")
    (mixed / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    (mixed / "notes.txt").write_text("ignored: not an image name")
    s = scan(tmp_path / "mixed")  # an evaluation set is verified file by file
    assert [p.name for p in s.paths] == ["good.png"] and [p.name for p, _ in s.skipped] == ["broken.png"]
    # a training set is streamed: the broken file is found when drawn, and 1 of 2 is over the 1 % limit
    proc = run_cli("teacher", "train", "--schedule", "smoke", "--steps", "3", "--batch", "4", "--data", tmp_path / "mixed",
                   "--out", tmp_path / "t", "--quiet", "--device", "cpu", check=False)
    assert proc.returncode == 2 and "broken.png" in proc.stderr and "more than 1%" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    bad = run_cli("teacher", "train", "--schedule", "smoke", "--data", tmp_path / "empty", "--out", tmp_path / "u", check=False)
    assert bad.returncode == 2 and "no usable images" in bad.stderr and "Traceback" not in bad.stderr


def test_bundled_photos_are_real_and_split():
    train, held_out = resolve(None, "train").paths, resolve("bundled", "eval").paths
    assert len(train) >= 5 and len(held_out) >= 3 and not set(train) & set(held_out)
    assert all(Path(p).is_file() for p in train + held_out)


def test_cached_batches_are_pinned_and_copied_asynchronously_exactly_on_cuda(tmp_path, monkeypatch):
    """``LatentCache.batch_at``: on the CPU the batch is the plain rows (as before); on a CUDA device the rows are
    gathered into pinned host memory and all three copied with ``non_blocking`` (no stream sync per step)."""
    from asymllic.training.latents import CacheWriter

    rng = np.random.default_rng(0)
    writer = CacheWriter(tmp_path / "cache", 6, 32)
    writer.add(rng.integers(0, 255, (6, 3, 32, 32), dtype=np.uint8),
               *(rng.standard_normal((6, 320, 2, 2)).astype(np.float16) for _ in range(2)))
    cache = writer.close({"count": 6})
    gen = torch.Generator().manual_seed(1 * 1_000_003 + 3)
    x, y, y_hat = cache.rows(torch.randint(0, len(cache), (4,), generator=gen).numpy())
    expected = (x.float().div_(255), y.float(), y_hat.float())  # the batch as it always was

    pinned, copies, real_to = [], [], torch.Tensor.to
    monkeypatch.setattr(torch.Tensor, "pin_memory", lambda self, *a, **k: pinned.append(self.dtype) or self.clone())

    def to(self, *args, **kwargs):
        target = args[0] if args and isinstance(args[0], (str, torch.device)) else kwargs.get("device")
        if target is not None and torch.device(target).type == "cuda":  # no GPU here: record it, stay on the CPU
            copies.append(kwargs.get("non_blocking", False))
            return real_to(self, "cpu")
        return real_to(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "to", to)
    for device in ("cpu", torch.device("cpu")):
        got = cache.batch_at(3, 4, seed=1, device=device)
        assert all(a.dtype == b.dtype == torch.float32 and torch.equal(a, b) for a, b in zip(got, expected))
    assert pinned == [] and copies == []
    got = cache.batch_at(3, 4, seed=1, device=torch.device("cuda", 0))
    assert pinned == [torch.uint8, torch.float16, torch.float16] and copies == [True, True, True]
    assert all(torch.equal(a, b) for a, b in zip(got, expected))


def test_two_cache_writers_with_the_same_pid_keep_their_own_folders(tmp_path, monkeypatch):
    """Two nodes of a shared cache root may run writers with the same pid (containers): each builds in a folder
    of its own, the first complete cache is renamed into place, and the later writer drops its copy and uses it."""
    import os
    import socket

    from asymllic.training.latents import CacheWriter

    monkeypatch.setattr(os, "getpid", lambda: 4242)
    monkeypatch.setattr(socket, "gethostname", lambda: "node")

    def rows(seed):
        r = np.random.default_rng(seed)
        return (r.integers(0, 255, (4, 3, 32, 32), dtype=np.uint8),
                *(r.standard_normal((4, 320, 2, 2)).astype(np.float16) for _ in range(2)))

    folder = tmp_path / "cache" / "digest" / "key"
    first, second = rows(1), rows(2)
    a = CacheWriter(folder, 4, 32)
    a.add(*(v[:2] for v in first))
    b = CacheWriter(folder, 4, 32)  # started while a is half-way
    assert a.tmp != b.tmp and a.tmp.is_dir()
    b.add(*(v[:2] for v in second))
    a.add(*(v[2:] for v in first))
    b.add(*(v[2:] for v in second))
    done = a.close({"writer": "a"})
    theirs = b.close({"writer": "b"})  # a finished first: b drops its copy
    for cache in (done, theirs):
        assert cache.path == folder and json.loads((folder / "meta.json").read_text()) == {"writer": "a"}
        assert all(np.array_equal(cache.arrays[k], v) for k, v in zip(("x", "y", "y_hat"), first))
    assert sorted(p.name for p in folder.parent.iterdir()) == ["key"]  # no temporary folder left
    c = CacheWriter(folder, 4, 32)
    c.abort()
    assert sorted(p.name for p in folder.parent.iterdir()) == ["key"]
