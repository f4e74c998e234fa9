"""The teacher is key- and shape-compatible with the official LIC_TCM checkpoints."""
import json
import pickle

import pytest
import torch

import space
from asymllic.codec.checkpoint import load_codec
from asymllic.errors import CheckpointError
from asymllic.models.meta import meta_model
from conftest import ANCHORS

REF = json.loads((ANCHORS / "tcm_state_dict_shapes.json").read_text())["models"]


@pytest.mark.parametrize("n", [64, 128])
def test_state_dict_matches_official_keys_and_shapes(n):
    ref = REF[f"N{n}"]
    model = meta_model(space.teacher_config(n))
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert sorted(ours) == sorted(ref["state_dict"])
    assert {k: v for k, v in ours.items() if v != ref["state_dict"][k]} == {}
    assert sum(p.numel() for p in model.parameters()) == ref["params_total"]


def _official_like(path, prefix="module.", zipfile=True):
    """A checkpoint laid out as LIC_TCM's train.py saves it: a dict with state_dict (DataParallel keys)."""
    torch.manual_seed(1)
    model = space.teacher_config(64)
    from asymllic.models import LicCodec

    net = LicCodec(model)
    net.update(force=True)
    state = {prefix + k: v for k, v in net.state_dict().items()}
    torch.save({"epoch": 3, "state_dict": state, "loss": 1.0, "optimizer": {}}, path,
               _use_new_zipfile_serialization=zipfile)
    return net


@pytest.mark.parametrize("zipfile", [True, False])  # False: the pre-1.6 format, which cannot be memory-mapped
def test_official_checkpoint_loads_strict(tmp_path, zipfile):
    net = _official_like(tmp_path / "checkpoint_best.pth.tar", zipfile=zipfile)
    loaded = load_codec(tmp_path / "checkpoint_best.pth.tar")
    assert loaded.config == space.teacher_config(64)
    for k, v in net.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k


def test_pickle_with_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        pickle.dump({"state_dict": Evil()}, f)
    with pytest.raises(CheckpointError, match="not a weights-only checkpoint|cannot read"):
        load_codec(path)


def test_wrong_architecture_names_the_keys(tmp_path):
    from asymllic.codec.checkpoint import new_codec, save_codec

    save_codec(new_codec(space.get_preset("paper")), tmp_path / "paper.pt")
    obj = torch.load(tmp_path / "paper.pt", weights_only=True)
    obj["config"] = space.to_dict(space.get_preset("teacher"))  # lie about the architecture
    torch.save(obj, tmp_path / "liar.pt")
    with pytest.raises(CheckpointError, match=r"missing .*g_s\.|wrong shape"):
        load_codec(tmp_path / "liar.pt")


def test_not_a_checkpoint(tmp_path):
    (tmp_path / "x.pt").write_bytes(b"hello")
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        load_codec(tmp_path / "x.pt")
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_codec(tmp_path / "missing.pt")
