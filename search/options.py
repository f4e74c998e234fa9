"""Declared options of the library's entry points beside a search's spec (:mod:`search.spec`): what reads a
study (``results``, ``pareto``, ``export``, ``factorize``), ``confirm``, ``rd`` and ``reproduce``. The command
line's flags are generated from these declarations, and the library functions take the same names with the same
defaults (the constants below). Plain data: importing this module imports no torch, pandas or Optuna."""
from __future__ import annotations

from dataclasses import dataclass

from asymllic.options import (Batch, Device, ExperimentFile, Png, Precision, Quiet, Root, RunOptions, Schedule, Seed,
                              Steps, Teacher, TestData, TrainData, option)

from .spec import OBJECTIVES, REFERENCES, Backend, Pick, RayAddress, StudyRef

FACTOR = 4  # confirm's default steps: this many times the study's steps per candidate
SEEDS = 3  # confirm's seeds per decoder
RD_BACKENDS = ("local", "ray")  # rd: one lambda after another in this process, or the lambdas at once on Ray
TABLES = ("table1", "table2", "table3", "fig1")  # the paper's tables and figure that `reproduce` measures


def parse_seeds(text: str):
    """``"3"`` -> 3 seeds; ``"0,1,2"`` -> those seeds; ``"7,"`` -> seed 7 alone."""
    parts = [p for p in text.split(",") if p.strip()]
    try:
        if not parts:
            raise ValueError
        return [int(p) for p in parts] if "," in text else int(parts[0])
    except ValueError:
        raise ValueError(f"{text!r}: a number of seeds (3) or a list of seeds (0,1,2; one seed: 7,)") from None


@dataclass(kw_only=True)
class Results(StudyRef):
    csv: str | None = option(None, "also write the table as CSV here")
    parquet: str | None = option(None, "also write the table as Parquet here")
    all_columns: bool = option(False, "show every column")


@dataclass(kw_only=True)
class Pareto(StudyRef, Png):
    x: str | None = option(None, "the cost on the x axis (default: the one the study minimised)",
                           choices=tuple(OBJECTIVES))


@dataclass(kw_only=True)
class Export(StudyRef, Pick):
    onnx: bool = option(False, "also write g_s.onnx (dynamic size), checked against torch on a photo (see the card)")
    include_references: bool = option(False, "let the reference presets (teacher, paper) be picked too")


@dataclass(kw_only=True)
class Factorize(StudyRef, Png):
    """The two studies are positional arguments; ``study`` is not an option of factorize."""

    measure: int = option(0, "combine and evaluate the K cheapest joint-front pairs", metavar="K")
    max_side: int | None = option(None, "centre-crop held-out photos for --measure (default: as the studies' "
                                        "training schedule)")
    joint: str | None = option(None, "a joint study to compare the factorized front with")
    csv: str | None = option(None, "also write the pairs as CSV here")


@dataclass(kw_only=True)
class StudyOverrides(Device, Precision, Backend):
    """What a command run on a study's spec may change of it (each defaults to the study's)."""


@dataclass(kw_only=True)
class Confirm(StudyRef, Pick, Png, Quiet):
    references: tuple[str, ...] = option(REFERENCES, "reference decoders trained beside the picks (none: give the "
                                                     "flag with no preset)", nargs="*", metavar="PRESET")
    steps: int | None = option(None, "training steps per run (default: --factor x the study's)")
    factor: int = option(FACTOR, "default steps as a multiple of the study's")
    seeds: int = option(SEEDS, "seeds per decoder")


@dataclass(kw_only=True)
class RDTraining(RunOptions, Root, Schedule, Steps, Batch, TrainData, TestData, Seed):
    """How ``rd`` trains and evaluates each lambda's decoder (``search.rd.rd_curve``'s keyword options)."""


@dataclass(kw_only=True)
class RD(RDTraining, RayAddress, Png, Quiet):
    teachers: tuple[str, ...] = option((), "one teacher checkpoint per lambda (ours or official LIC_TCM)",
                                       metavar="MODEL")
    lmbdas: tuple[float, ...] | None = option(None, "the teachers' lambdas, in order (default: read from each "
                                                    "checkpoint or its file name)")
    anchor: tuple[str, ...] = option((), "a CompressAI-format RD curve, or a Kodak anchor name (e.g. vtm, "
                                         "bpg_444_x265_ycbcr); repeatable", repeat=True, metavar="JSON")
    out: str | None = option(None, "output folder (default: <root>/rd/<config id>)")
    name: str | None = option(None, "the curve's name in the JSON and the plot")
    backend: str = option(RD_BACKENDS[0], "local: one lambda after another here; ray: all lambdas at once as Ray tasks",
                          choices=RD_BACKENDS)
    gpus_per_point: float | None = option(None, "with --backend ray: GPUs each lambda reserves (default: 1 where the "
                                                "cluster has GPUs)")


@dataclass(kw_only=True)
class Reproduce(ExperimentFile, Quiet):
    print_config: bool = option(False, "print the packaged experiment file(s) and stop")


@dataclass(kw_only=True)
class ReproduceOverrides(Schedule, Steps, Teacher, TrainData, TestData, Root, Backend, Device, Precision):
    """What ``reproduce`` may change of the experiment files (each defaults to the file's)."""

    seeds: int | tuple[int, ...] = option(SEEDS, "seeds per row (tables 2 and 3): a number, or a list 0,1,2 (one seed: 7,)",
                                          parse=parse_seeds, metavar="N|S,S,..")
    out: str | None = option(None, "output folder (default <root>/reproduce/<table>/; for all, one sub-folder per "
                                   "table)")
