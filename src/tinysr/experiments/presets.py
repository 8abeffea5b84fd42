"""The study's experiments as data: one `RunSpec` per table row, in the visible dict `TABLES`.

A run spec is everything a training run needs and nothing else: the model config, the data (HR image folders and
the Table I size variant), the training recipe, and the study's published numbers for that row as reference
columns. The runner (`tinysr.experiments.runner`) turns specs into run folders; the report reads those folders.

Data paths are relative to the working directory of the `tinysr experiment` command (`--data` / `--val-data`
replace them). They are the folders the prepare commands write:
  tinysr prepare div2k --root data/DIV2K       -> data/DIV2K/DIV2K_{train,valid}_HR
  tinysr prepare cinic --src CINIC10 --out data/cinic   -> data/cinic/{train,val} (256x256 HR)
LR images are always made from HR by the named degradation (default "bicubic", MATLAB's float path); DIV2K's
official x2 LR files were made the same way, so the folder reader does not need them.

Published numbers: only what the study prints. Parameter counts are those of its Tables I-IV (the same table that
tests/test_models.py pins); its headline row 0 blocks / 4 filters is 963 parameters at 29.85 dB against bicubic's
29.24 dB. Every other published PSNR is unknown here and stays None ("n/a" in reports): never invent one.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

from tinysr.errors import TinySRError
from tinysr.models import PRESETS, EDSRConfig, TinyConfig
from tinysr.models.tiny import BUDGETS, deployed_params


@dataclass(frozen=True)
class Recipe:
    """The training recipe; the defaults are the study's (Adam, L1 on 0..255, LR patch 48)."""

    steps: int = 300_000
    batch_size: int = 1
    patch: int = 48  # LR patch side
    learning_rate: float = 1e-4
    schedule: str = "step"  # "step": halved every lr_step steps; "cosine": down to 0 at `steps`
    lr_step: int = 200_000  # the learning rate is halved here
    eval_every: int = 1_000
    protocol: str = "study"  # the validation protocol, see tinysr.metrics.PROTOCOLS
    degradation: str = "bicubic"
    seed: int = 0
    loss: str = "l1"  # "l1" on RGB (the study's) or "l1-y" on luma, see tinysr.train.losses
    final_loss: str | None = None  # the loss of the last `final_fraction` of the steps (tinysr.train.loop.TrainConfig)
    final_fraction: float = 0.0
    revive_every: int = 0  # re-initialise dead ReLU units every N steps (tinysr.train.revive); 0: never
    polish_steps: int = 0  # then `tinysr polish` steps (tinysr.train.polish) into the folder ROW-polished; 0: none


@dataclass(frozen=True)
class DataSpec:
    """Training and validation HR folders, and the Table I size variant.

    val: the validation HR folder, or None with `val_split` N: validate on N images held out of `train`
        (`tinysr.data.split`, seeded by the recipe's seed), never on a test set.
    hr_downscale: 1, 2 or 4: each HR image (train and val) is first shrunk by this factor (MATLAB imresize).
    hr_size, lr_size: the nominal sizes the study's tables print ("1972x1435"), labels only.
    prepare: the command that makes the folders, quoted in the error when they are missing.
    """

    name: str
    train: tuple[str, ...]
    val: str | None
    hr_downscale: int = 1
    hr_size: str = "n/a"
    lr_size: str = "n/a"
    prepare: str = ""
    val_split: int | None = None

    def __post_init__(self) -> None:
        if (self.val is None) == (self.val_split is None):
            raise ValueError(f"{self.name}: give exactly one of val (a folder) and val_split (held-out images)")


@dataclass(frozen=True)
class Reference:
    """The study's published numbers for one row; None where the study gives none that we know of."""

    params: int | None = None
    psnr: float | None = None
    bicubic_psnr: float | None = None


@dataclass(frozen=True)
class RunSpec:
    """One row of a table: `name` is "TABLE/ROW" (also the run folder below RUNS_DIR), `key` the `--only` key."""

    name: str
    key: str
    model: EDSRConfig | TinyConfig
    data: DataSpec
    recipe: Recipe = Recipe()
    reference: Reference = Reference()

    @property
    def table(self) -> str:
        return self.name.split("/", 1)[0]


# --- Data ------------------------------------------------------------------------------------------------------
_DIV2K_PREPARE = "tinysr prepare div2k --root data/DIV2K"
_CINIC_PREPARE = "tinysr prepare cinic --src CINIC10_ROOT --out data/cinic"


def div2k_data(hr_downscale: int, hr_size: str, lr_size: str) -> DataSpec:
    """DIV2K train (800) / valid (100), HR optionally shrunk by `hr_downscale` (Table I)."""
    return DataSpec(name="DIV2K", train=("data/DIV2K/DIV2K_train_HR",), val="data/DIV2K/DIV2K_valid_HR",
                    hr_downscale=hr_downscale, hr_size=hr_size, lr_size=lr_size, prepare=_DIV2K_PREPARE)


def cinic_data(hr_downscale: int, hr_size: str, lr_size: str) -> DataSpec:
    """The study's CINIC-10 subset at 256x256 HR; hr_downscale 2 gives its 128x128 variant."""
    return DataSpec(name="CINIC-10", train=("data/cinic/train",), val="data/cinic/val",
                    hr_downscale=hr_downscale, hr_size=hr_size, lr_size=lr_size, prepare=_CINIC_PREPARE)


#: Tables II-IV train on CINIC 128 -> 256 at x2 (the brief names it for Table II; assumed for III and IV).
CINIC_256 = cinic_data(1, "256x256", "128x128")


def edsr(n_blocks: int, n_feats: int) -> EDSRConfig:
    return EDSRConfig(n_blocks=n_blocks, n_feats=n_feats, scale=2)


# --- Table I: EDSR baseline 16/64 x2, five training-set sizes ---------------------------------------------------
_BASELINE = PRESETS["edsr-baseline"]
_BASELINE_PARAMS = Reference(params=1_369_859)
TABLE1 = (
    RunSpec("table1/div2k-1972", "div2k-1972", _BASELINE, div2k_data(1, "1972x1435", "986x718"),
            reference=_BASELINE_PARAMS),
    RunSpec("table1/div2k-986", "div2k-986", _BASELINE, div2k_data(2, "986x718", "493x359"),
            reference=_BASELINE_PARAMS),
    RunSpec("table1/div2k-493", "div2k-493", _BASELINE, div2k_data(4, "493x359", "247x180"),  # HR/2 rounded up
            reference=_BASELINE_PARAMS),
    RunSpec("table1/cinic-256", "cinic-256", _BASELINE, CINIC_256, reference=_BASELINE_PARAMS),
    RunSpec("table1/cinic-128", "cinic-128", _BASELINE, cinic_data(2, "128x128", "64x64"),
            reference=_BASELINE_PARAMS),
)

# --- Table II: depth, 0..64 residual blocks at 64 filters --------------------------------------------------------
_TABLE2_PARAMS = {0: 188_163, 1: 262_019, 2: 335_875, 4: 483_587, 8: 779_011, 16: 1_369_859, 32: 2_551_555,
                  64: 4_914_947}
TABLE2 = tuple(
    RunSpec(f"table2/b{b}-f64", str(b), edsr(b, 64), CINIC_256, reference=Reference(params=n))
    for b, n in _TABLE2_PARAMS.items()
)

# --- Table III: width, the wide EDSRs (the model presets of the same names) --------------------------------------
TABLE3 = (
    RunSpec("table3/b16-f256", "b16-f256", PRESETS["edsr-16x256"], CINIC_256, reference=Reference(params=21_847_043)),
    RunSpec("table3/b16-f512", "b16-f512", PRESETS["edsr-16x512"], CINIC_256, reference=Reference(params=87_341_059)),
    RunSpec("table3/b32-f512", "b32-f512", PRESETS["edsr-32x512"], CINIC_256,
            reference=Reference(params=162_854_915)),
)

# --- Table IV: no residual blocks, 1..64 filters; the 963-parameter headline is f4 --------------------------------
_TABLE4_REFS = {
    1: Reference(params=108),
    2: Reference(params=303),
    4: Reference(params=963, psnr=29.85, bicubic_psnr=29.24),  # the study's headline
    16: Reference(params=12_483),
    64: Reference(params=188_163),
}
TABLE4 = tuple(RunSpec(f"table4/b0-f{f}", str(f), edsr(0, f), CINIC_256, reference=r) for f, r in _TABLE4_REFS.items())

# --- tiny-pareto (issue 6): the tiny family's budgets at x2, the study's EDSR 0/4, and 1k at x3/x4 ------------------
# Data: T91 + BSD200 (the 291-image set of SRCNN/FSRCNN/ESPCN) from the shared folder, `$TINYSR_DATA` or
# ../shared/data relative to the working directory (like every table path). Validation holds out 10 of those 291
# training images (`--val-split 10`): checkpoints are never selected on a test set; Set5/Set14/BSD100/Urban100 are
# measured afterwards by `tinysr report RUNS --test-data ...`. Parameters are those of the deployed (collapsed) net.
SHARED_DATA = os.environ.get("TINYSR_DATA", "../shared/data")
T291 = DataSpec(name="T91+BSD200", train=(f"{SHARED_DATA}/T91", f"{SHARED_DATA}/BSD200"), val=None, val_split=10,
                prepare="shipped in the shared data folder; set TINYSR_DATA to its path")
# A CPU recipe: batch 16 of 48x48 LR patches, Adam at 2e-3 with a cosine decay to 0, 20k steps, validation every 1k
# under the standard protocol (Y, border = scale), seed 0 (also the seed of the held-out draw).
# The loss: the Y-only tiny nets fit luma (`l1-y`, +0.14 dB on the 1k x2 net in the ablation); the RGB EDSR keeps
# the RGB L1 (a luma loss would leave its colours free). The presets still trained expanded (tiny-5k-x2 and
# tiny-1k-x3, see `tinysr.models.tiny`) keep that first recipe (RGB L1): their bundled weights came from it.
TINY_RECIPE = Recipe(steps=20_000, batch_size=16, patch=48, learning_rate=2e-3, schedule="cosine",
                     eval_every=1_000, protocol="standard", loss="l1-y")
FIRST_TINY_RECIPE = dataclasses.replace(TINY_RECIPE, loss="l1")
# The third recipe, for the <=1k nets at x2 and x4: the same, plus dead-unit revival every 2,500 steps
# (`tinysr.train.revive`: the first 886-parameter x2 net had 2 of its 7 hidden units dead) and a final phase on the squared
# luma error (the last 20% of the steps, where the cosine learning rate is below 2.2e-4). On 10 held-out training
# images, reviving the converged net and training on, then the squared-error phase, took it from 31.55 to 31.69 dB.
REVIVING_TINY_RECIPE = dataclasses.replace(TINY_RECIPE, final_loss="mse-y", final_fraction=0.2, revive_every=2_500)
# The fourth, for the 1k x2 net trained expanded (expand 4 keeps its units alive, and revival handles plain convs
# only): the luma L1, then the same squared-error final fifth. 31.75 against the third recipe's 31.72 on the held-out
# images at 30,000 steps, and ahead from the start (31.64 against 31.43 at 5,000).
EXPANDED_TINY_RECIPE = dataclasses.replace(TINY_RECIPE, final_loss="mse-y", final_fraction=0.2)
# The sixth: any of those, then 8 steps of `tinysr polish` (whole training images, mean PSNR, L-BFGS; the best step
# on the held-out images is kept) into ROW-polished. On the held-out images: +0.015 dB (1k x2), +0.052 (1k x3),
# +0.019 (1k x4), in 4-8 minutes with two threads (a little optimistic: the step is chosen on those images, though
# in all three the last step was the best and the rise was monotone). On the test sets, measured once afterwards:
# Set5 +0.081 / +0.061 / +0.043 dB. Those three rows' bundled weights are the polished ones.
POLISH_STEPS = 8
# Per row: the recipe its bundled weights were trained with (so every documented command still reproduces them).
_RECIPES = {"1k": dataclasses.replace(EXPANDED_TINY_RECIPE, polish_steps=POLISH_STEPS),
            "1k-x4": dataclasses.replace(REVIVING_TINY_RECIPE, polish_steps=POLISH_STEPS), "5k": FIRST_TINY_RECIPE,
            "1k-x3": dataclasses.replace(FIRST_TINY_RECIPE, polish_steps=POLISH_STEPS)}


def _tiny_row(key: str, config: TinyConfig, name: str) -> RunSpec:
    params = deployed_params(config)
    return RunSpec(f"tiny-pareto/{name}", key, config, T291, recipe=_RECIPES.get(key, TINY_RECIPE),
                   reference=Reference(params=params))


TINY_PARETO = (
    *(_tiny_row(budget, PRESETS[f"tiny-{budget}-x2"], f"tiny-{budget}-x2") for budget in BUDGETS),
    RunSpec("tiny-pareto/edsr-0-4-x2", "edsr", edsr(0, 4), T291, recipe=FIRST_TINY_RECIPE,
            reference=Reference(params=963)),  # the study's headline net, RGB, trained with the RGB L1
    _tiny_row("1k-x3", PRESETS["tiny-1k-x3"], "tiny-1k-x3"),
    _tiny_row("1k-x4", PRESETS["tiny-1k-x4"], "tiny-1k-x4"),
)

TABLES: dict[str, tuple[RunSpec, ...]] = {
    "table1": TABLE1,
    "table2": TABLE2,
    "table3": TABLE3,
    "table4": TABLE4,
    "tiny-pareto": TINY_PARETO,
}


def get_table(table: str) -> tuple[RunSpec, ...]:
    """The rows of `table` (a key of `TABLES`); TinySRError naming the known tables otherwise."""
    try:
        return TABLES[table]
    except KeyError:
        raise TinySRError(f"unknown table {table!r}; known: {', '.join(TABLES)}") from None


def select_rows(table: str, only: list[str] | None = None) -> list[RunSpec]:
    """The rows of `table` picked by short key ("0", "b16-f256") or full name ("table2/b0-f64"), in table order.

    `only` None or empty selects every row; an unknown key is a TinySRError listing the table's keys.
    """
    rows = get_table(table)
    if not only:
        return list(rows)
    wanted = {w.strip() for w in only if w.strip()}
    unknown = wanted - {r.key for r in rows} - {r.name for r in rows}
    if unknown:
        keys = ", ".join(r.key for r in rows)
        raise TinySRError(f"--only {','.join(sorted(unknown))}: not in {table}; its keys are: {keys}")
    return [r for r in rows if r.key in wanted or r.name in wanted]
