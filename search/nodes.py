"""Where a search's files live when its trials run on several machines, and the check of it at start.

The model: every machine of a search (each Ray node, each machine running Optuna workers on one PostgreSQL study)
mounts the study's root at the same path, a shared filesystem. Trials write their checkpoints, codecs, logs and
the latent cache there, and the driver, ``export``, ``confirm`` and ``factorize`` read them from there; the
records themselves also travel through the engine (Ray's results, the study storage). Before anything trains:

- the driver writes a probe file into the study's folder, and each other machine must read it back at the same
  path (a root that is only local to one machine fails here, not as missing checkpoints at export);
- each machine must see the teacher and the data folders, have this package at the driver's version and be able
  to write into the study's folder.

A failed check is one line naming the machine and the path. Each trial records the host it ran on.
"""
from __future__ import annotations

import json
import os
import secrets
import socket
from pathlib import Path

PROBE_DIR = ".probes"


def host() -> str:
    return socket.gethostname()


def write_probe(study_dir: Path) -> dict:
    """A probe file in ``study_dir`` that machines sharing the folder can read back: {"path", "token", "host"}."""
    from asymllic.files import write_text

    token = secrets.token_hex(8)
    path = Path(study_dir).resolve() / PROBE_DIR / f"{token}.json"
    probe = {"path": str(path), "token": token, "host": host()}
    write_text(json.dumps(probe), path)
    return probe


def remove_probe(probe: dict) -> None:
    Path(probe["path"]).unlink(missing_ok=True)


def problems(probe: dict, paths: dict, version: str) -> list:
    """What this machine lacks to take trials: the probe at its path, each of ``paths`` ({what: path}), this
    package at ``version``, a writable study folder. Runs on each machine."""
    import asymllic
    from asymllic.errors import AsymllicError
    from asymllic.files import check_writable

    out = []
    study_dir = Path(probe["path"]).parent.parent
    try:
        seen = json.loads(Path(probe["path"]).read_text()).get("token")
    except (OSError, ValueError):
        seen = None
    if seen != probe["token"]:
        out.append(f"does not see the study folder {study_dir} written by {probe['host']} (no probe "
                   f"{Path(probe['path']).name} there): every machine must mount the results root at the same path")
    for what, path in paths.items():
        if path and not Path(path).exists():
            out.append(f"has no {what} at {path}")
    if asymllic.__version__ != version:
        out.append(f"runs asymllic {asymllic.__version__}, the driver {version}")
    if not out:
        try:
            check_writable(study_dir)
        except AsymllicError as e:
            out.append(str(e))
    return out


def shared_paths(spec) -> dict:
    """What every machine of the search ``spec`` must see: the teacher and the data folders given as paths."""
    return {what: path for what, path in (("teacher", spec.teacher), ("training data", spec.data),
                                          ("selection photos", spec.eval_data), ("test photos", spec.test_data))
            if path and os.path.isabs(str(path))}


def absolute(spec):
    """``spec`` with its root, and each path it names that exists here, made absolute from the driver's working
    folder: Ray runs each trial in a working folder of its own, and other machines have other working folders.
    Names that are not paths here (``bundled``, a preset) stay names."""
    from dataclasses import replace

    out = {"root": str(Path(spec.root).resolve())}
    for key in ("teacher", "data", "eval_data", "test_data"):
        value = getattr(spec, key, None)
        if value and Path(value).exists():
            out[key] = str(Path(value).resolve())
    return replace(spec, **out)


ROOT_PROBE = "root_probe"  # the study attribute naming the probe every machine of an Optuna search must see


def check_study_machine(study, spec) -> None:
    """Optuna workers on several machines share one study storage: the first machine to run the study leaves a
    probe in the study's folder and names it in the study; every machine (this one now) must read it at the same
    path, and see the teacher and data, before it takes a trial. One line naming this machine otherwise. A study in
    SQLite travels with its folder (one machine's file): moved or copied, it is probed again where it is now."""
    import asymllic
    from asymllic.errors import AsymllicError

    probe = study.user_attrs.get(ROOT_PROBE)
    here = Path(spec.dir).resolve()
    moved = probe is not None and Path(probe["path"]).parent.parent != here and \
        (spec.storage or "sqlite").startswith("sqlite")
    if probe is None or moved:
        study.set_user_attr(ROOT_PROBE, {**write_probe(spec.dir), "version": asymllic.__version__})
    probe = study.user_attrs[ROOT_PROBE]  # read back: of two machines starting together, one probe is the study's
    folder = Path(probe["path"]).parent.parent
    found = [] if here == folder else [f"runs the study in {here}, not in its folder {folder}: give the same --root"]
    found = found or problems(probe, shared_paths(spec), probe.get("version", asymllic.__version__))
    if found:
        raise AsymllicError(f"this machine ({host()}) {found[0]}; it took no trial of study {spec.study!r}")
