"""RD curves over teachers of several lambdas: training per lambda at the smoke schedule, the CompressAI-format
curves, BD figures against the teacher and anchors, resume per lambda, one-line errors."""
import json
import math

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import space
from asymllic.evaluation.bd import bd_psnr, bd_row
from conftest import photo
from search.rd import POINT_FILE, lambda_folder, load_anchor, rd_curve, teacher_lambda, teachers_by_lambda
from search.rd_report import BD_CSV, DECODER_JSON, TEACHER_JSON


@pytest.fixture(scope="module")
def teachers(tmp_path_factory) -> list:
    """Two TCM-small teachers (seeded, untrained: instant): one with its lambda in its meta, one with a TCM
    lambda in its file name only, as LIC_TCM's checkpoints have."""
    from asymllic.codec.checkpoint import new_codec, save_codec

    d = tmp_path_factory.mktemp("teachers")
    a, b = d / "ours.pt", d / "mse_0.013.pth.tar"
    save_codec(new_codec(space.teacher_config(64), seed=0), a, meta={"lmbda": 0.0035})
    save_codec(new_codec(space.teacher_config(64), seed=1), b)
    return [str(a), str(b)]


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> tuple:
    """(training folder, test folder): one photo each, as small as the smoke schedule takes."""
    d = tmp_path_factory.mktemp("rdimages")
    (d / "train").mkdir()
    (d / "test").mkdir()
    Image.fromarray(photo("astronaut", (128, 128))).save(d / "train" / "a.png")
    Image.fromarray(photo("coffee", (64, 64))).save(d / "test" / "c.png")
    return str(d / "train"), str(d / "test")


def curve(bpp, psnr, name="c"):
    return {"name": name, "results": {"bpp": list(bpp), "psnr-rgb": list(psnr)}}


def test_bd_psnr_and_rows():
    anchor = curve([0.2, 0.4, 0.8], [30, 32, 34], "a")
    better = curve([0.2, 0.4, 0.8], [30.5, 32.5, 34.5], "b")
    assert bd_psnr(anchor, better) == pytest.approx(0.5, abs=1e-6)
    row = bd_row(better, anchor)
    assert row["bd_psnr_db"] == pytest.approx(0.5, abs=1e-6) and row["bd_rate_pct"] < 0 and row["note"] == ""
    one = bd_row(curve([0.3], [31]), anchor)
    assert math.isnan(one["bd_rate_pct"]) and math.isnan(one["bd_psnr_db"]) and "one RD point" in one["note"]
    with pytest.raises(ValueError, match="at least 2"):
        bd_psnr(anchor, curve([0.3], [31]))


def test_bd_psnr_says_the_overlap_in_its_own_words():
    """BD-PSNR integrates along log bpp: a small common bpp range is one BDOverlapWarning in this project's words,
    no common range a ValueError; bjontegaard's own warnings never come through, in a row's note either."""
    import warnings

    from asymllic.evaluation.bd import PSNR, BDOverlapWarning, bd_overlap

    anchor = curve([0.1, 0.2, 0.4], [28, 30, 32], "a")
    shifted = curve([0.3, 0.6, 1.2], [31, 33, 35], "b")
    share, common, union = bd_overlap(anchor, shifted, figure=PSNR)
    assert share == pytest.approx(np.log10(0.4 / 0.3) / np.log10(1.2 / 0.1))
    assert common == pytest.approx((0.3, 0.4)) and union == pytest.approx((0.1, 1.2))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert math.isfinite(bd_psnr(anchor, shifted))
    assert [w.category for w in caught] == [BDOverlapWarning] and caught[0].filename == __file__
    assert str(caught[0].message).startswith("overlap 12 % of the curves' joint log bpp range (0.300-0.400 bpp")
    far = curve([2, 4], [30, 31])
    with pytest.raises(ValueError, match="do not overlap in log bpp"):
        bd_psnr(anchor, far)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        row, apart = bd_row(shifted, anchor), bd_row(far, anchor)
    assert "the BD-PSNR averages over that part only" in row["note"] and "no BD-PSNR" in apart["note"]
    assert not [n for n in (row["note"], apart["note"]) if "bjontegaard" in n or "overlap:" in n or "Curves" in n]


def test_teacher_lambdas_and_bad_inputs(teachers, tmp_path):
    from asymllic.errors import AsymllicError

    from pathlib import Path

    assert teachers_by_lambda(teachers[::-1]) == [(0.0035, Path(teachers[0]).resolve()),
                                                  (0.013, Path(teachers[1]).resolve())]  # sorted by lambda
    assert [lam for lam, _ in teachers_by_lambda(teachers, [0.05, 0.0067])] == [0.0067, 0.05]  # given: they win
    assert teacher_lambda(teachers[1]) == 0.013 and teacher_lambda(teachers[0], 0.025) == 0.025
    nameless = tmp_path / "teacher.pt"
    (tmp_path / "x").mkdir()
    import shutil

    shutil.copy(teachers[1], nameless)
    cases = [
        (lambda: rd_curve("paper", [tmp_path / "missing.pt"]), AsymllicError, "no such checkpoint"),
        (lambda: rd_curve("paper", [nameless]), AsymllicError, "no lambda for teacher .*give one per teacher"),
        (lambda: rd_curve("paper", [teachers[0], teachers[0]]), space.ConfigError, "lambda 0.0035 twice"),
        (lambda: rd_curve("paper", teachers, [0.01, 0.01]), space.ConfigError, "lambda 0.01 twice"),
        (lambda: rd_curve("paper", teachers, [0.01]), space.ConfigError, "1 lambdas for 2 teachers"),
        (lambda: rd_curve("paper", teachers, [0.01, -1]), space.ConfigError, "positive number"),
        (lambda: rd_curve("not-a-model", teachers), AsymllicError, "is not a model"),
        (lambda: rd_curve(tmp_path / "x", teachers), AsymllicError, "folder without codec.pt"),
        (lambda: rd_curve("paper", ["teacher"]), space.ConfigError, "not a trained teacher"),
        (lambda: rd_curve("paper", []), space.ConfigError, "at least one teacher"),
        (lambda: rd_curve("paper", teachers, anchors=["no-such-anchor"]), space.ConfigError, "no Kodak anchor"),
        (lambda: rd_curve("paper", teachers, anchors=[{"name": "x", "results": {}}]), space.ConfigError,
         "CompressAI's results format"),
        (lambda: rd_curve("paper", teachers, schedule="weekly"), space.ConfigError, "schedule: unknown value .weekly."),
    ]
    for call, error, match in cases:
        with pytest.raises(error, match=match) as info:
            call()
        assert "\n" not in str(info.value)
    assert not list(tmp_path.glob("rd"))  # nothing written for a bad call
    from space.anchors import kodak_anchor

    assert load_anchor("vtm")["name"] and load_anchor(kodak_anchor("hm"))["results"]["bpp"]
    assert load_anchor(curve([0.1, 0.2], [30, 31], "mine"))["name"] == "mine"


def test_rd_curve_at_the_smoke_schedule_and_resume(teachers, images, tmp_path, monkeypatch, strict_cuda):
    """Trained on ``cuda:1`` as the strict CUDA stand-in shows it (tensors on the CPU)."""
    data, test = images
    out = tmp_path / "rd"
    res = rd_curve("paper", teachers, schedule="smoke", steps=1, data=data, test_data=test, out=out,
                   root=str(tmp_path), anchors=["vtm"], progress=False, device="cuda:1")
    assert ("set_device", 1) in {(c["call"], c["device"]) for c in strict_cuda.log}
    assert res.trained == [0.0035, 0.013]
    for c in (res.decoder, res.teacher):
        r = c["results"]
        assert len(r["bpp"]) == 2 and r["bpp"] == sorted(r["bpp"]) and sorted(r["lmbda"]) == [0.0035, 0.013]
        assert all(np.isfinite(r["psnr-rgb"])) and all(b > 0 for b in r["bpp"]) and "ms-ssim-rgb" in r
    assert res.decoder["name"] == "paper" and res.teacher["name"] == "teacher"
    # one CompressAI-format JSON per curve: what CompressAI's plot tool and our BD helpers read
    on_disk = json.loads((out / DECODER_JSON).read_text())
    assert on_disk == res.decoder and json.loads((out / TEACHER_JSON).read_text()) == res.teacher
    bd = pd.read_csv(out / BD_CSV)
    assert list(bd["anchor"]) == ["teacher", "VTM", "VTM"] and list(bd["test"]) == ["paper", "paper", "teacher"]
    assert all(np.isfinite(r["bd_rate_pct"]) or isinstance(r["note"], str) for _, r in bd.iterrows())
    assert (out / "rd.html").stat().st_size > 1000
    from search.plots.rd import rd_figure

    fig = rd_figure([res.decoder, res.teacher], res.anchors)
    assert [t.name for t in fig.data] == ["paper", "teacher", "VTM"] and fig.data[2].line.dash == "dash"
    assert list(fig.data[0].text) == [f"lambda {v:g}" for v in res.decoder["results"]["lmbda"]]
    # each lambda's combined codec is a real codec of the decoder's config, trained on that teacher
    from asymllic.codec.checkpoint import load_codec

    for lam in (0.0035, 0.013):
        codec = load_codec(lambda_folder(out, lam) / "codec.pt")
        paper = space.get_preset("paper")
        assert (codec.config.synthesis, codec.config.hyperprior) == (paper.synthesis, paper.hyperprior)
        assert not list(lambda_folder(out, lam).glob("stage*/train_state.pt"))  # done: no optimiser state kept

    # rerun: nothing is trained again; a lambda whose point was lost is evaluated again from its finished stages
    def no_training(*a, **k):
        raise AssertionError("trained again")

    monkeypatch.setattr("asymllic.training.train_stage1", no_training)
    monkeypatch.setattr("asymllic.training.train_stage2", no_training)
    again = rd_curve("paper", teachers, schedule="smoke", steps=1, data=data, test_data=test, out=out,
                     root=str(tmp_path), progress=False)
    assert again.trained == [] and again.decoder == res.decoder
    (lambda_folder(out, 0.013) / POINT_FILE).unlink()
    third = rd_curve("paper", teachers, schedule="smoke", steps=1, data=data, test_data=test, out=out,
                     root=str(tmp_path), progress=False)
    assert third.trained == [0.013] and third.decoder["results"]["psnr-rgb"] == pytest.approx(res.decoder["results"]["psnr-rgb"])
    # the same folder for another run is refused, not mixed in
    from asymllic.errors import AsymllicError

    with pytest.raises(AsymllicError, match="holds a point of another run .*steps"):
        rd_curve("paper", teachers, schedule="smoke", steps=2, data=data, test_data=test, out=out, root=str(tmp_path),
                 progress=False)


@pytest.mark.xdist_group("ray")
def test_a_killed_curve_resumes_on_ray(teachers, images, tmp_path, ray_stopped_after):
    """``asymllic rd`` SIGKILLed after its first lambda; the rerun, on Ray, trains only the other one and the curve
    has both points."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from conftest import ROOT

    data, test = images
    out = tmp_path / "rd"
    args = [sys.executable, "-m", "asymllic", "rd", "paper", "--teachers", *teachers, "--schedule", "smoke",
            "--steps", "1", "--data", data, "--test-data", test, "--out", str(out), "--root", str(tmp_path)]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    first, second = lambda_folder(out, 0.0035) / POINT_FILE, lambda_folder(out, 0.013) / POINT_FILE
    deadline = time.time() + 300
    while not first.is_file() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
    assert proc.poll() is None, proc.stdout.read().decode()[-2000:]  # still running: killed mid-way
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert first.is_file() and not second.is_file()
    res = rd_curve("paper", teachers, schedule="smoke", steps=1, data=data, test_data=test, out=out,
                   root=str(tmp_path), backend="ray", progress=False)
    assert res.trained == [0.013] and sorted(res.decoder["results"]["lmbda"]) == [0.0035, 0.013]
    assert json.loads(second.read_text())["key"]["lmbda"] == 0.013  # the Ray task wrote its point where it belongs
    with pytest.raises(space.ConfigError, match="backend"):
        rd_curve("paper", teachers, out=out, backend="dask")
