"""The command line's grammar: every verb's options, declared without importing torch, numpy or any library layer.

`tinysr --help`, `tinysr VERB --help` and every usage error need nothing more than this module and `cli.types`
(standard library only); `tinysr.cli.main` runs the light pre-checks (`cli.checks`) and then imports the one runner
module a verb needs. A degradation name is checked there too, not here: its grammar lives in `tinysr.data.degrade`.
"""

from __future__ import annotations

import argparse
from collections.abc import Collection, Sequence

from tinysr import __version__
from tinysr.cli.types import int_at_least, positive_float, positive_int

SCALES = (2, 3, 4)
EXPORT_FORMATS = ("onnx", "onnx-int8", "numpy", "tflite", "ncnn", "coreml", "spandrel")

# Names that the library owns, written here because their owners' modules import numpy (`tinysr.metrics`, and
# `tinysr.train.config` through it) or http.client (`tinysr.data.div2k`), which the grammar must not;
# tests/test_cli_start.py keeps each equal to its owner.
PROTOCOL_NAMES = ("standard", "study")  # tinysr.metrics.PROTOCOLS
SCHEDULES = ("step", "cosine")  # tinysr.train.config.SCHEDULES
LOSS_NAMES = ("l1", "l1-y", "mse-y")  # tinysr.train.config.LOSS_NAMES
DIV2K_SPLITS = ("train", "valid")  # tinysr.data.div2k.SPLITS
DIV2K_SCALES = (2, 3, 4)  # tinysr.data.div2k.OFFICIAL_SCALES
DIV2K_BASE_URL = "https://data.vision.ee.ethz.ch/cvl/DIV2K"  # tinysr.data.div2k.OFFICIAL_BASE_URL
# tinysr.data.testsets.SETS, DEFAULT_SETS and RAW_BASE_URL (tests/test_testsets_download.py keeps them equal)
TESTSETS = ("Set5", "Set14", "BSD100", "Urban100", "Manga109", "T91", "BSD200", "matlab_imresize")
TESTSETS_DEFAULT = ("Set5", "Set14", "BSD100", "Urban100", "T91", "BSD200", "matlab_imresize")
TESTSETS_BASE_URL = "https://raw.githubusercontent.com"


class HelpFormatter(argparse.HelpFormatter):
    """argparse's help, plus "(default: X)" after every option whose default is a value (not None or off) and whose
    help does not say it already."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        off = action.default is None or action.default is False or action.default == argparse.SUPPRESS
        if not off and "default" not in text:
            shown = " ".join(map(str, action.default)) if isinstance(action.default, list) else action.default
            text += f" (default: {shown})"
        return text


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the option, and exit status 2; help shows defaults."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


#: --trust's help: a weights file without a digest loads only when the user vouches for it (`tinysr.integrity`).
TRUST_HELP = ("load {what} even if it carries no sha256 digest (made by another tool or an old tinysr), with a "
              "warning; without it such a file is refused, since a damaged or altered one cannot be told apart")


def add_trust_option(p: argparse.ArgumentParser, what: str = "the --model weights file") -> None:
    p.add_argument("--trust", action="store_true", help=TRUST_HELP.format(what=what))


def add_eval_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="bicubic, a weights file, a run folder, a bundled model, or auto / "
                   "auto-5k (per image, the model tinysr upscale --model auto picks for its LR)")
    p.add_argument("--data", required=True, nargs="+", help="folder(s) of HR images")
    p.add_argument("--scale", type=int, choices=SCALES,
                   help="upscaling factor (default: the network's own; --model bicubic needs it)")
    p.add_argument("--protocol", default="standard", choices=PROTOCOL_NAMES,
                   help="standard: Y, border crop (the field's); study: RGB, no crop (the study's validation)")
    lr = p.add_mutually_exclusive_group()
    lr.add_argument("--degradation", default="bicubic",
                    help="how LR is made from HR: a resize stage (bicubic, bicubic-uint8, pil-bicubic, cv2-area, "
                         "nearest), then optional codec stages: +jpegQ, +webpQ, +avifQ (Q in 1-100) or a range "
                         "such as +jpeg30-95 drawn per image (default bicubic)")
    lr.add_argument("--lr-data", metavar="DIR",
                    help="LR images made elsewhere, paired with --data's HR by file stem (one --data folder)")
    p.add_argument("--device", default="cpu", help="torch device for the network: cpu, cuda, cuda:1, mps")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    p.add_argument("--max-pixels", type=int, default=None, help="raise Pillow's decompression-bomb limit")
    p.add_argument("--self-ensemble", action="store_true",
                   help="average the network over the 8 flips/rotations (EDSR's '+'; 8x the multiply-adds)")
    add_trust_option(p)


def add_demo_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="demo-out", help="folder for the demo's report and figures (and --train's run)")
    p.add_argument("--train", action="store_true",
                   help="train the 963-parameter EDSR on scikit-image's photos (needs pip install 'tinysr[train]')")
    p.add_argument("--steps", type=int, help="with --train: training steps (default: the demo recipe's 4,000)")
    p.add_argument("--threads", type=int, default=1, help="with --train: torch CPU threads (default 1)")
    p.add_argument("--force", action="store_true", help="replace the demo's files in a non-empty --out")


def add_train_options(p: argparse.ArgumentParser) -> None:
    p.description = ("Defaults are the study's recipe: L1, Adam, learning rate 1e-4 halved every "
                     "200k steps, 300k steps, batch 1, LR patch 48, validation every 1k steps.")
    m = p.add_argument_group("model (a preset or family name, and/or its fields)")
    m.add_argument("--model", help="a preset (e.g. edsr-tiny, edsr-baseline) or family (edsr); default edsr")
    m.add_argument("--blocks", type=int, help="residual blocks (n_blocks)")
    m.add_argument("--feats", type=positive_int, help="filters per conv (n_feats)")
    m.add_argument("--scale", type=int, choices=SCALES, help="upscaling factor (default: the preset's, else 2)")
    m.add_argument("--res-scale", type=positive_float, help="residual scaling")
    m.add_argument("--layers", type=positive_int, help="tiny nets: convs at low resolution (n_layers)")
    m.add_argument("--expand", type=positive_int, help="tiny nets: re-parameterisation factor while training "
                   "(1: plain convs)")
    d = p.add_argument_group("data and run folder")
    d.add_argument("--train-data", nargs="+", metavar="DIR", help="image folder(s), concatenated")
    v = d.add_mutually_exclusive_group()
    v.add_argument("--val-data", metavar="DIR", help="image folder for validation (whole images)")
    v.add_argument("--val-split", type=positive_int, metavar="N",
                   help="validate on N images held out of --train-data (seeded by --split-seed, else --seed; "
                   "names in config.json)")
    d.add_argument("--split-seed", type=int, metavar="S",
                   help="seed of the --val-split draw, so that runs of different --seed hold out the same images")
    d.add_argument("--degradation",
                   help="how LR is made from HR (default bicubic; e.g. bicubic+jpeg30-95, see tinysr eval --help)")
    d.add_argument("--out", metavar="RUN", help="the new run folder")
    d.add_argument("--resume", metavar="RUN", help="continue this run (options given must agree with it)")
    d.add_argument("--init", metavar="WEIGHTS",
                   help="a new run starts from these weights (a weights file or bundled model; its architecture "
                        "unless --model/fields are given), e.g. to fine-tune for another --degradation")
    add_trust_option(d, "the --init weights file")
    d.add_argument("--force", action="store_true", help="overwrite --out, or resume despite disagreeing options")
    d.add_argument("--max-pixels", type=int_at_least(1),
                   help="raise Pillow's decompression-bomb limit for the training images (default about 89.5 million "
                        "pixels per image)")
    t = p.add_argument_group("training")
    t.add_argument("--steps", type=positive_int, help="optimizer steps in all (default 300000, the study's)")
    t.add_argument("--batch-size", type=positive_int, help="patches per step, the global batch under torchrun "
                   "(default 1, the study's)")
    t.add_argument("--patch", type=positive_int, help="LR patch side")
    t.add_argument("--learning-rate", type=positive_float, help="Adam's learning rate (default 1e-4)")
    t.add_argument("--schedule", choices=SCHEDULES, help="step: halve every --lr-step steps (default); cosine: "
                   "down to 0 at --steps")
    t.add_argument("--loss", choices=LOSS_NAMES,
                   help="l1: L1 on RGB (default, the study's); l1-y: L1 on luma; mse-y: squared error on luma")
    t.add_argument("--final-loss", choices=LOSS_NAMES, help="the loss of the last --final-fraction of the steps")
    t.add_argument("--final-fraction", type=float, help="share of the steps, at the end, trained with --final-loss")
    t.add_argument("--revive-every", type=positive_int,
                   help="tiny ReLU nets: re-initialise dead hidden units every N steps (tinysr.train.revive)")
    t.add_argument("--lr-step", type=positive_int, help="halve the learning rate every N steps (step schedule)")
    t.add_argument("--eval-every", type=positive_int, help="validate (and keep the best weights) every N steps "
                   "(default 1000)")
    t.add_argument("--val-limit", type=positive_int, help="validate on the first N images only")
    t.add_argument("--protocol", choices=PROTOCOL_NAMES, help="validation protocol (default study)")
    t.add_argument("--seed", type=int, help="seed of the crops, flips and initial weights (default 0)")
    t.add_argument("--device", default="auto", help="auto (cuda, mps, cpu), cpu, cuda, cuda:1, mps")
    t.add_argument("--threads", type=positive_int, help="torch CPU threads")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    f = p.add_argument_group("speed (tinysr.train.cuda; default: all on for CUDA except --compile, all off on CPU)")
    f.add_argument("--channels-last", action=argparse.BooleanOptionalAction, help="NHWC model and input")
    f.add_argument("--bf16", action=argparse.BooleanOptionalAction, help="bf16 autocast, fp32 master weights")
    f.add_argument("--compile", action=argparse.BooleanOptionalAction, help="torch.compile the model")
    f.add_argument("--cuda-graphs", action=argparse.BooleanOptionalAction,
                   help="one CUDA graph per step (single process only)")
    f.add_argument("--gpu-data", action=argparse.BooleanOptionalAction, help="crop and augment on the GPU")


def add_polish_options(p: argparse.ArgumentParser) -> None:
    p.description = ("Last stage for small nets: maximise the validation protocol's mean PSNR on the "
                     "run's whole training images by full-batch L-BFGS, validating after each step "
                     "and keeping the best on the run's held-out images.")
    p.add_argument("run", metavar="RUN", help="a run folder with best.safetensors")
    p.add_argument("--out", required=True, metavar="OUT", help="the new run folder")
    p.add_argument("--steps", type=positive_int, help="L-BFGS steps, each validated (default 8)")
    p.add_argument("--evals-per-step", type=positive_int,
                   help="L-BFGS iterations per step, each one or more passes over the training set (default 10)")
    p.add_argument("--history", type=positive_int, help="L-BFGS memory (default 20)")
    p.add_argument("--threads", type=positive_int, help="torch CPU threads")
    p.add_argument("--force", action="store_true", help="overwrite OUT")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


#: The default tile side: memory bounded on any image size, and on 2 cores the fastest CPU setting measured
#: (benchmarks/upscale.py: one 512 tile per core against the whole 1920x1080 frame at once).
DEFAULT_TILE = 512


#: --engine -> `tinysr.upscale(..., fused=)`: None picks the fused kernels where they apply (`tinysr.infer.fused`)
ENGINES = {"auto": None, "torch": False, "fused": True}
#: the `--model auto...` families (`tinysr.delivery.auto.AUTO_FAMILIES`, which imports torch; a test keeps them equal)
AUTO_FAMILY_NAMES = ("auto", "auto-5k")


def add_upscale_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image or video files, and/or folders of them")
    p.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="output folder (created if missing), or a file name (image or video suffix) for one input")
    p.add_argument("--model", default="auto",
                   help="a weights file, a run folder, a bundled model (tinysr models), or auto (the default): per "
                        "file, the bundled clean model for lossless input, for a JPEG the model of its estimated "
                        "quality's band, the JPEG-aware one for lossy WebP, at the scale `tinysr encode` recorded in "
                        "the file (restoring its original size), all <= 1,000 parameters; auto-5k: the same with "
                        "the <= 5,000-parameter nets")
    p.add_argument("--scale", type=int, choices=SCALES,
                   help="check that the model upscales by this factor; with --model auto, the scale of files that "
                        "record none (default 2)")
    p.add_argument("--tile", type=int_at_least(1), default=DEFAULT_TILE,
                   help=f"tile side in LR pixels (default {DEFAULT_TILE}): bounds memory, and tiles run one per core; "
                        "the output does not depend on it")
    p.add_argument("--overlap", type=int_at_least(0),
                   help="LR context per tile side; default: the receptive radius (exact)")
    p.add_argument("--self-ensemble", action="store_true", help="average the 8 flips/rotations (8x slower)")
    p.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:1, mps")
    p.add_argument("--engine", choices=tuple(ENGINES), default="auto",
                   help="auto (default): the fastest engine that applies, whatever the size: the compiled Numba "
                        "kernels for Y-only tiny nets (every bundled one) and compact nets, else torch where installed, else NumPy; "
                        "fused: require the kernels (an error where they cannot run); torch: never the kernels "
                        "(torch where installed, else NumPy)")
    p.add_argument("--max-pixels", type=int_at_least(1),
                   help="raise Pillow's decompression-bomb limit (default about 89.5 million pixels per image)")
    v = p.add_argument_group("video (a clip given as INPUT, recognised by its content)")
    v.add_argument("--codec", default="libx264", help="FFmpeg video encoder of the output")
    v.add_argument("--crf", type=int_at_least(0), default=18, help="the encoder's constant rate factor")
    v.add_argument("--preset", default="veryfast", help="the encoder's speed preset (veryfast keeps encoding off "
                   "the critical path; see benchmarks/RESULTS.md, video)")
    v.add_argument("--no-yuv", action="store_true", help="always go through RGB (default: Y-only nets take the "
                   "decoded Y plane directly)")
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")
    add_trust_option(p)


def add_encode_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", metavar="IMAGE", help="the original image file")
    p.add_argument("--budget", required=True, type=int_at_least(1), metavar="BYTES", help="the file size limit")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="the file to write (.jpg, or .webp)")
    p.add_argument("--codec", choices=("jpeg", "webp"), default="jpeg", help="default jpeg")
    p.add_argument("--receiver", choices=AUTO_FAMILY_NAMES, default="auto",
                   help="the --model the receiver will upscale with: auto (<= 1,000-parameter nets, the default) "
                        "or auto-5k (<= 5,000)")
    p.add_argument("--force", action="store_true", help="overwrite OUT if it exists")


def add_models_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the table as JSON")
    o = p.add_argument_group("OpenModelDB entry (tinysr.openmodeldb: the data/models/ID.json file that OpenModelDB's "
                             "contributing guide asks for; warnings say what it still lacks)")
    o.add_argument("--openmodeldb", metavar="MODEL",
                   help="write the entry of this bundled model, weights file or run folder (training fields from its "
                        "recorded command or the run's config.json)")
    o.add_argument("-o", "--output", metavar="OUT.json", help="the file to write (default: print it)")
    o.add_argument("--url", action="append", metavar="URL",
                   help="where the weights file is downloaded (repeatable: mirrors; default: a placeholder to replace)")
    o.add_argument("--resource", action="append", nargs="+", metavar=("FILE", "URL"),
                   help="one more resource: a .safetensors, .pth or .onnx file of the same net (an export), and its "
                        "download URLs (repeatable)")
    o.add_argument("--name", help="the entry's name (default: tinysr and the model's name less its scale)")
    o.add_argument("--author", action="append", metavar="ID",
                   help="an OpenModelDB user id (repeatable; default: tinysr, which data/users.json must then list)")
    o.add_argument("--license", metavar="SPDX", help="the model's licence, an SPDX id such as MIT (default: none, "
                                                     "null in the entry)")
    o.add_argument("--date", metavar="YYYY-MM-DD", help="the release date (default: today)")
    o.add_argument("--tag", action="append", metavar="TAG",
                   help="an OpenModelDB tag beyond those derived (general-upscaler, photo, jpeg, ...), e.g. anime")
    o.add_argument("--force", action="store_true", help="replace OUT.json if it exists")
    add_trust_option(o, "the --openmodeldb weights file")


def add_web_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--build", metavar="DIR", help="write the static site (page + model files) to DIR and exit")
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    p.add_argument("--model", action="append", metavar="SPEC",
                   help="a weights file, run folder or bundled model to offer (repeatable; default: every bundled "
                        "model)")
    p.add_argument("--force", action="store_true",
                   help="write over DIR only if it is a site tinysr built (it holds tinysr-site.json)")
    add_trust_option(p, "the --model weights files")


def add_export_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("output", metavar="OUT",
                   help="what to write, with the format's suffix: .onnx, .npz, .tflite, .param (ncnn: NAME.param and "
                        "NAME.bin beside it), .mlpackage (coreml, a folder) or .safetensors / .pth (spandrel)")
    p.add_argument("--model", required=True, help="a weights file, a run folder, or a bundled model")
    p.add_argument("--format", required=True, choices=EXPORT_FORMATS,
                   help="onnx: float, dynamic H and W; onnx-int8: quantised (needs --calibration); numpy: for "
                        "the torch-free runtime (tinysr.runtime); tflite: LiteRT, for phones; ncnn: the ncnn "
                        "runtime's .param and .bin; coreml: a Core ML package for Apple devices; spandrel: a compact "
                        "net as spandrel's Compact state dict (chaiNNer, ComfyUI)")
    p.add_argument("--convention", choices=("tinysr", "chainner", "upscayl"), default="tinysr",
                   help="tinysr: RGB 0..255 in and out, tinysr's names; chainner (onnx): the 0..1 file chaiNNer "
                        "loads; upscayl (ncnn): 0..1, blobs data/output, for Upscayl's custom models folder "
                        "(OUT models/NAME.param, NAME naming the scale, e.g. tiny-x2)")
    p.add_argument("--scale", type=int, choices=SCALES, help="check that the model upscales by this factor")
    p.add_argument("--calibration", metavar="FOLDER", help="LR images to calibrate int8 on (onnx-int8 only)")
    p.add_argument("--seed", type=int, default=0, help="seed of the calibration crops")
    p.add_argument("--force", action="store_true",
                   help="replace an existing OUT of the format's own kind (a regular file, or a Core ML package "
                        "tinysr exported); never a folder, a link or the model")
    add_trust_option(p)


def add_prepare_options(p: argparse.ArgumentParser) -> None:
    """`prepare div2k`, `prepare cinic` and `prepare testsets`."""
    datasets = p.add_subparsers(dest="dataset", required=True, parser_class=type(p))

    d = datasets.add_parser("div2k", help="download, verify (SHA-256) and unpack the official DIV2K zips")
    d.add_argument("--root", required=True, help="folder for the zips and the official layout (zips found here "
                                                 "are used instead of downloading)")
    d.add_argument("--scales", type=int, nargs="+", default=list(DIV2K_SCALES), choices=DIV2K_SCALES,
                   help="which official LR sets to fetch")
    d.add_argument("--splits", nargs="+", default=list(DIV2K_SPLITS), choices=DIV2K_SPLITS,
                   help="which splits to fetch")
    d.add_argument("--base-url", default=DIV2K_BASE_URL, help="a mirror of the official folder")
    d.add_argument("--timeout", type=float, default=60.0, help="seconds without data before a download fails")

    c = datasets.add_parser("cinic", help="seeded class-balanced HR subset of CINIC-10 (or any <class>/ tree)")
    c.add_argument("--src", required=True, help="CINIC-10 root (with train/) or a folder of class folders")
    c.add_argument("--out", required=True, help="output folder (train/, val/, manifest.json)")
    c.add_argument("--per-class", type=int, nargs=2, default=[80, 10], metavar=("TRAIN", "VAL"),
                   help="images drawn per class for training and for validation")
    c.add_argument("--hr-size", type=int, default=256, help="side of the square HR images")
    c.add_argument("--seed", type=int, default=0, help="seed of the draw")
    c.add_argument("--max-pixels", type=int, default=None, help="decompression-bomb limit per source image")
    c.add_argument("--force", action="store_true", help="replace a non-empty --out")

    t = datasets.add_parser("testsets", help="download, convert, verify (SHA-256) and lay out the benchmark test "
                                             "sets (Set5, Set14, BSD100, Urban100, T91, BSD200, ...)")
    t.add_argument("--out", required=True, help="the data folder: DIR/Set5/*.png, DIR/Urban100/*.webp, ... (what "
                                                "TINYSR_DATA names); files already there are checked and skipped")
    t.add_argument("--sets", nargs="+", default=list(TESTSETS_DEFAULT), choices=TESTSETS, metavar="SET",
                   help=f"which sets, of {', '.join(TESTSETS)} (Manga109, 141 MiB and for academic use only, is "
                        "fetched only when named)")
    t.add_argument("--if-missing", action="store_true",
                   help="do nothing when every file of --sets is already in --out (without reading them)")
    t.add_argument("--base-url", default=TESTSETS_BASE_URL,
                   help="where <owner>/<repo>/<commit>/<path> is served (a mirror of raw.githubusercontent.com)")
    t.add_argument("--timeout", type=float, default=60.0, help="seconds without data before a download fails")


def _add_report_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs_dir", metavar="RUNS_DIR", help="folder holding run folders (searched recursively)")
    p.add_argument("--out", default=None, help="folder for tables and figures (default: RUNS_DIR/report)")
    p.add_argument("--device", default="cpu", help="device for the visual comparison's models")
    p.add_argument("--no-visual", action="store_true", help="skip the visual comparison figure")
    p.add_argument("--test-data", nargs="+", metavar="DIR",
                   help="test folders (e.g. Set5 Set14 BSD100 Urban100): measure every run's best weights on them "
                        "(standard protocol), beside bicubic and the published references; Pareto plots on the first")


def add_report_options(p: argparse.ArgumentParser) -> None:
    _add_report_args(p)


def add_experiment_options(p: argparse.ArgumentParser) -> None:
    esub = p.add_subparsers(dest="experiment_command", required=True, parser_class=type(p))
    lp = esub.add_parser("list", help="print the tables' rows")
    lp.add_argument("table", nargs="?", help="one table (default: all)")
    rp = esub.add_parser("run", help="run a table's rows: skip finished runs, resume unfinished ones")
    rp.add_argument("table", help="table1, table2, table3, table4 or tiny-pareto")
    rp.add_argument("--only", help="comma-separated row keys (table2: blocks, table4: filters, tiny-pareto: "
                                   "100..5k, edsr, 1k-x3, 1k-x4) or full names")
    rp.add_argument("--out", default="runs", help="RUNS_DIR; each row runs in RUNS_DIR/TABLE/ROW (default: runs)")
    rp.add_argument("--steps", type=positive_int, help="training steps (study: 300000)")
    rp.add_argument("--batch-size", type=positive_int, help="batch size (study: 1)")
    rp.add_argument("--eval-every", type=positive_int, help="validation interval in steps (study: 1000)")
    rp.add_argument("--learning-rate", type=float, help="Adam learning rate (study: 1e-4)")
    rp.add_argument("--schedule", choices=SCHEDULES, help="learning-rate schedule (study: step)")
    rp.add_argument("--polish-steps", type=int_at_least(0),
                    help="tinysr polish steps after training, into ROW-polished (0: none; tiny-pareto's <=1k rows: 8)")
    rp.add_argument("--data", nargs="+", metavar="DIR", help="training HR folder(s) instead of the table's")
    rp.add_argument("--val-data", metavar="DIR", help="validation HR folder instead of the table's")
    rp.add_argument("--jobs", type=positive_int, default=1, help="runs at once, as subprocesses (default 1)")
    rp.add_argument("--threads", type=positive_int, help="torch threads per run (default: cores / jobs)")
    rp.add_argument("--device", default="auto", help="auto (cuda, mps, cpu), cpu, cuda, cuda:1, ...")
    rp.add_argument("--devices", help="CUDA indices, e.g. 0,1,2,3: one run per GPU at a time (overrides --jobs)")
    rp.add_argument("--dry-run", action="store_true", help="print the queue, run nothing")
    _add_report_args(esub.add_parser("report", help="the same as `tinysr report`"))


#: verb -> (its line in `tinysr --help`, the function that declares its options), in that help's order.
GRAMMAR = {
    "eval": ("PSNR/SSIM of an upscaler on a folder of HR images", add_eval_options),
    "demo": ("the main job on embedded photos (no data needed)", add_demo_options),
    "train": ("train a network into a run folder (or --resume one)", add_train_options),
    "polish": ("fit a run's best net on whole training images to mean PSNR (L-BFGS)", add_polish_options),
    "upscale": ("upscale image files and folders with a network", add_upscale_options),
    "encode": ("downscale + compress an image to a byte budget, for `upscale --model auto`", add_encode_options),
    "models": ("list the bundled pretrained models, or write one's OpenModelDB entry", add_models_options),
    "export": ("export a network: ONNX (float or int8), the NumPy runtime, LiteRT (tflite), ncnn, Core ML or spandrel",
               add_export_options),
    "prepare": ("download / build training data (DIV2K, CINIC-10 subset) and the benchmark test sets",
                add_prepare_options),
    "experiment": ("the study's tables as experiments: list, run, report", add_experiment_options),
    "report": ("tables (Markdown, CSV) and figures rebuilt from run folders", add_report_options),
    "web": ("serve the browser page (the nets run on the viewer's device) or build it", add_web_options),
}


def verb_of(argv: Sequence[str]) -> str | None:
    """The verb of a command line: its first word that names one (only the top-level --help and --version, which
    take no value, may come before it), or None."""
    return next((word for word in argv if word in GRAMMAR), None)


def build_parser(verbs: Collection[str] | None = None) -> argparse.ArgumentParser:
    """The whole grammar; `verbs`: declare the options of these verbs only (the others keep their name and help line,
    enough for `tinysr --help`). `tinysr.cli.main` declares only the verb the command line names: all of them would
    cost 2-3 ms of CPU more on every start, a fifth of what tinysr adds to Python's own (benchmarks/cli_start.py)."""
    parser = OneLineParser(prog="tinysr", description="Single-image super-resolution around EDSR.")
    parser.add_argument("--version", action="version", version=f"tinysr {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    for verb, (help_line, add_options) in GRAMMAR.items():
        verb_parser = sub.add_parser(verb, help=help_line)
        if verbs is None or verb in verbs:
            add_options(verb_parser)
    return parser
