"""The CUDA paths, tested without a GPU: device-index resolution with a monkeypatched device count, every
trained part on a device other than the CPU's (the meta device), coding that refuses what it cannot decode
exactly, the latency path, the compile cache, out-of-memory and device faults."""
import copy

import numpy as np
import pytest
import torch

import space
from asymllic import device as dev
from asymllic.codec.checkpoint import new_codec
from asymllic.codec.coding import compress, decompress, reconstruct
from asymllic.errors import BitstreamError
from asymllic.evaluation.metrics import distortion_loss, rd_loss
from asymllic.images import pad_to, read_image
from asymllic.models.meta import meta_model


@pytest.fixture
def two_gpus(monkeypatch):
    """torch believes it has two CUDA devices, the current one cuda:1; set_device records what it is given after
    torch's own argument check (which rejects a device without an index)."""
    calls = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    monkeypatch.setattr(torch._C, "_cuda_setDevice", calls.append, raising=False)
    saved = (torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    yield calls
    torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def test_a_device_without_index_is_prepared_with_the_current_one(two_gpus):
    from torch.cuda._utils import _get_device_index

    with pytest.raises(ValueError):  # what prepare() used to hand torch.cuda.set_device
        _get_device_index(torch.device("cuda"), optional=False)
    for name in ("auto", "cuda"):
        assert dev.prepare(dev.pick_device(name)) == torch.device("cuda", 1)
    assert dev.prepare(dev.pick_device("cuda:0")) == torch.device("cuda", 0)
    assert two_gpus == [1, 1, 0]
    assert dev.worker_device("cuda", 3) == torch.device("cuda", 1)
    with pytest.raises(dev.DeviceError, match="2 CUDA device"):
        dev.pick_device("cuda:2")


def test_a_stage_run_resolves_cuda_with_its_index(two_gpus):
    from asymllic.training import StageRun

    assert StageRun("out", device="cuda").resolved() == (torch.device("cuda", 1), "bf16")
    assert StageRun("out", device="auto", precision="fp16").resolved() == (torch.device("cuda", 1), "fp16")


@pytest.mark.parametrize("preset", ["teacher", "paper", "g_s/conv_k5", "g_s/rbu"])
def test_every_trained_part_runs_forward_and_backward_off_the_cpu(preset):
    """All tensors on the meta device: a tensor made on the CPU's default device inside any forward, loss or
    backward would raise here as it would on a GPU."""
    model = meta_model(space.get_preset(preset)).train()
    x = torch.empty(2, 3, 128, 128, device="meta")
    teacher = rd_loss(model(x), x, 0.0067)  # teacher: everything
    y = model.g_a(x).detach()
    stage1 = distortion_loss(model.g_s(y), x, 0.0067)  # stage 1: g_s from y_hat
    out = model.entropy_forward(y)  # stage 2: h_a, h_s, f_c, the z prior, through g_s
    stage2 = rd_loss({"x_hat": model.g_s(out["y_hat"]), "likelihoods": out["likelihoods"]}, x, 0.0067)
    for loss in (teacher, stage1, stage2):
        assert loss["loss"].device.type == "meta"
        loss["loss"].backward()
    assert model.aux_loss().device.type == "meta"
    with torch.no_grad():
        assert model.eval()(x, False)["x_hat"].shape == x.shape


def test_the_z_prior_matches_compressai_without_reading_the_device():
    from compressai.entropy_models import EntropyBottleneck

    from asymllic.models.entropy import ZBottleneck

    ours, theirs = ZBottleneck(16), EntropyBottleneck(16)
    theirs.load_state_dict(ours.state_dict())
    z = torch.randn(2, 16, 5, 7) * 3
    for training in (False, True):
        torch.manual_seed(0)
        a = ours(z, training)
        torch.manual_seed(0)
        b = theirs(z, training)
        assert all(torch.equal(u, v) for u, v in zip(a, b))


@pytest.fixture(scope="module")
def codec_and_photo():
    import skimage.data

    model = new_codec(space.get_preset("paper"), seed=1)
    arr = skimage.data.astronaut()[:136, :200]
    return model, torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).float().div(255)[None]


def test_a_decoder_that_computes_other_scales_refuses_instead_of_returning_garbage(codec_and_photo):
    """A GPU's TF32 moves the scales by about 1e-3, enough to pick another scale index for some elements of a
    trained model; an untrained one sits at the scale bound, so the drift made by hand here is larger. Other
    indexes desynchronise the rANS decoder: a one-line error, never an image."""
    model, x = codec_and_photo
    data = compress(model, x)
    drifted = copy.deepcopy(model)  # keeps the digest: the header's weights check passes
    with torch.no_grad():
        for chain in drifted.cc_scale_transforms:  # other scales: other scale indexes, a desynchronised decoder
            chain[-1].bias.add_(1.0)
    with pytest.raises(BitstreamError, match="decoded symbols differ .* computed on 'cpu/"):
        decompress(drifted, data)
    assert torch.equal(decompress(model, data), reconstruct(model, x))


def test_the_scale_indexes_do_not_depend_on_the_thread_count(codec_and_photo):
    model, x = codec_and_photo
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        data = compress(model, x)
        torch.set_num_threads(2)
        assert torch.equal(decompress(model, data), reconstruct(model, x))
    finally:
        torch.set_num_threads(old)


def test_coding_through_a_separate_entropy_model_gives_the_same_bytes(codec_and_photo):
    """What a GPU model does: g_a/g_s in one module, the entropy-parameter path in its CPU copy."""
    model, x = codec_and_photo
    xp = pad_to(x, model.config.pad_multiple())
    twin = copy.deepcopy(model)
    a, b = model.compress(xp), model.compress(xp, entropy=twin)
    assert a["strings"] == b["strings"] and a["symbols_crc"] == b["symbols_crc"]
    back = model.decompress(b["strings"], b["shape"], entropy=twin)
    assert torch.equal(back["x_hat"], model.decompress(a["strings"], a["shape"])["x_hat"])
    assert back["symbols_crc"] == a["symbols_crc"]


def test_the_timed_decode_is_the_decode(codec_and_photo, monkeypatch):
    """latency.decode_networks runs decompress's networks, with its scale indexes built from a real table."""
    from asymllic.evaluation import latency
    from compressai.entropy_models import GaussianConditional

    model, x = codec_and_photo
    xp = pad_to(x, model.config.pad_multiple())
    with torch.no_grad():
        y = model.g_a(xp)
        z = model.h_a(y)
        z_hat = model.entropy_bottleneck.decompress(model.entropy_bottleneck.compress(z), z.shape[-2:])
        timed = latency.decode_networks(model, z_hat, y)
    assert torch.equal(timed[..., :136, :200], decompress(model, compress(model, x)))
    seen = []
    build = GaussianConditional.build_indexes
    monkeypatch.setattr(GaussianConditional, "build_indexes", lambda self, s: seen.append(build(self, s)) or seen[-1])
    latency.decode_latency(space.get_preset("hp/slices_2"), (128, 128), repeats=1, warmup=0)
    assert len(seen) == 2 and all(int(i.min()) >= 0 for i in seen)  # -1 everywhere without a scale table


def test_each_compiled_candidate_starts_with_fresh_dynamo_caches(monkeypatch, tmp_path):
    from asymllic.training.stages import StageRun, _compiled

    resets, compiled = [], []
    monkeypatch.setattr(torch._dynamo, "reset", lambda: resets.append(1))
    monkeypatch.setattr(torch.nn.Module, "compile", lambda self, *a, **k: compiled.append(type(self).__name__))
    for preset in ("paper", "teacher"):
        _compiled(meta_model(space.get_preset(preset)), ("g_s",), StageRun(tmp_path, compile=True, device="cpu"))
    assert len(resets) == 2 and len(compiled) == 2
    _compiled(meta_model(space.get_preset("paper")), ("g_s",), StageRun(tmp_path, device="cpu"))
    assert len(resets) == 2


def test_out_of_memory_is_retried_once_and_a_device_fault_stops_the_worker(monkeypatch):
    from search.trial import MachineError, _with_device_retry

    released = []
    monkeypatch.setattr(dev, "release_memory", lambda: released.append(1))

    def failing(*errors):
        errors = list(errors)

        def fn():
            if errors:
                raise errors.pop(0)
            return "trained"
        return fn

    oom = torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    assert _with_device_retry(failing(oom)) == "trained" and released == [1]
    with pytest.raises(torch.cuda.OutOfMemoryError):  # twice: the candidate's own failure
        _with_device_retry(failing(oom, oom))
    with pytest.raises(MachineError, match="device fault"):
        _with_device_retry(failing(RuntimeError("CUDA error: an illegal memory access was encountered")))
    with pytest.raises(ValueError):  # anything else is the candidate's, untouched
        _with_device_retry(failing(ValueError("bad config")))


def test_gdn_stays_finite_in_fp16():
    from compressai.layers import GDN

    from asymllic.layers.gdn import fp32_gdn

    x = torch.full((1, 4, 3, 3), 300.0)
    gdn = GDN(4, inverse=True)
    with torch.autocast("cpu", dtype=torch.float16):
        assert not torch.isfinite(gdn(x)).all()  # CompressAI's: 300^2 overflows fp16
        assert torch.isfinite(fp32_gdn(gdn)(x)).all()
    model = meta_model(space.get_preset("teacher"))
    assert not any(type(m) is GDN for m in model.modules())  # every GDN of the codec is the fp32 one


def test_frozen_targets_do_not_depend_on_the_run_precision():
    from asymllic.training.latents import frozen_targets

    teacher = new_codec(space.teacher_config(64), seed=0)
    x = torch.rand(1, 3, 128, 128)
    fp32 = frozen_targets(teacher, x)
    with dev.autocast("cpu", "bf16"):
        bf16 = frozen_targets(teacher, x)
    assert all(torch.equal(a, b) for a, b in zip(fp32, bf16))
    assert fp32[0].dtype == torch.float16  # the cache's precision, on the fly too


def test_the_out_of_memory_retry_releases_after_the_failed_attempts_tensors_are_gone(monkeypatch):
    """The cache is emptied outside the exception handler: while the traceback lives, it holds the failed
    attempt's frames and their tensors, and emptying the cache then frees nothing."""
    import gc
    import weakref

    from search.trial import _with_device_retry

    alive_at_release, held = [], []
    monkeypatch.setattr(dev, "release_memory", lambda: alive_at_release.append(held[0]() is not None))

    def attempt():
        activations = torch.empty(1024)  # what the failed forward pass had allocated
        if not held:
            held.append(weakref.ref(activations))
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return "trained"

    gc.disable()  # only reference counting: what a GPU worker relies on between attempts
    try:
        assert _with_device_retry(attempt) == "trained"
    finally:
        gc.enable()
    assert alive_at_release == [False]


def test_the_estimated_rate_pass_runs_with_exact_kernels(codec_and_photo, monkeypatch):
    """Evaluation's extra h_a/h_s/f_c pass runs as coding does: no cuDNN autotuning for each new image size."""
    from asymllic.evaluation.evaluate import evaluate_image

    model, x = codec_and_photo
    seen, forward = [], type(model).entropy_forward
    monkeypatch.setattr(type(model), "entropy_forward",
                        lambda self, y: seen.append(torch.backends.cudnn.benchmark) or forward(self, y))
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", True)  # what training left set
    evaluate_image(model, x)
    assert seen == [False] and torch.backends.cudnn.benchmark
