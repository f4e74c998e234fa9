"""Every command that takes a model takes the same references, resolved by one function
(asymllic.codec.reference): a preset name, a config file, one of our checkpoints, an official LIC_TCM
.pth.tar, or an export folder."""
import json
import shutil

import pytest
import torch
from PIL import Image

import space
from asymllic.codec.checkpoint import new_codec, save_codec
from conftest import photo, run_cli
from search.candidate import base_config
from search.spec import SearchSpec

KINDS = ("preset", "config", "checkpoint", "official", "export")


@pytest.fixture(scope="module")
def references(tmp_path_factory):
    root = tmp_path_factory.mktemp("refs")
    cfg = space.teacher_config(64)
    model = new_codec(cfg, seed=0)
    ckpt = save_codec(model, root / "codec.pt")
    official = root / "checkpoint_best_loss.pth.tar"  # LIC_TCM's layout: a dict with state_dict, DataParallel keys
    torch.save({"epoch": 1, "state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}, official)
    export = root / "export" / space.config_id(cfg)
    export.mkdir(parents=True)
    space.save(cfg, export / "config.json")
    shutil.copy(ckpt, export / "codec.pt")
    img = root / "x.png"
    Image.fromarray(photo("coffee", (96, 64))).save(img)
    refs = {"preset": "teacher", "config": str(space.save(cfg, root / "teacher.yaml")), "checkpoint": str(ckpt),
            "official": str(official), "export": str(export)}
    return refs, img


@pytest.mark.parametrize("kind", KINDS)
def test_every_command_takes_every_kind_of_model(kind, references, tmp_path):
    refs, img = references
    ref = refs[kind]
    run_cli("compress", img, tmp_path / "x.alic", "--model", ref, "--device", "cpu")
    run_cli("decompress", tmp_path / "x.alic", tmp_path / "y.png", "--model", ref, "--device", "cpu")
    assert Image.open(tmp_path / "y.png").size == (96, 64)
    run_cli("eval", ref, "--data", img, "--out", tmp_path / "e.json", "--quiet", "--device", "cpu")
    assert json.loads((tmp_path / "e.json").read_text())["results"]["bpp"][0] > 0
    r = json.loads(run_cli("complexity", ref, "--json", "--convention", "thop").stdout)
    assert abs(r["decoder"]["macs"] / 1e9 - 145.71) < 0.01
    run_cli("figure", "erf", ref, "--latent", "8x8", "--out", tmp_path)
    run_cli("train", "stage1", "--teacher", ref, "--decoder", "paper", "--schedule", "smoke", "--steps", "1",
            "--out", tmp_path / "s1", "--cache", tmp_path / "cache", "--quiet", "--device", "cpu", "--loader-workers", "0")
    assert (tmp_path / "s1" / "codec.pt").is_file()
    assert base_config(SearchSpec(study="s", teacher=ref)) == space.teacher_config(64)  # what a search swaps into


def test_what_is_not_a_model_is_one_line(tmp_path, references):
    _, img = references
    for bad, words in (("nonsense", "is not a model"), (str(tmp_path / "missing.pt"), "no such checkpoint"),
                       (str(tmp_path), "folder without codec.pt")):
        proc = run_cli("compress", img, tmp_path / "x.alic", "--model", bad, check=False)
        assert proc.returncode == 2 and words in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
