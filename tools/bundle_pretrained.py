"""Maintainer tool: turn finished run folders into the bundled models of `tinysr.pretrained`.

For each `NAME=RUN` it loads RUN/best.safetensors (the checkpoint chosen on the run's own validation split), folds
a re-parameterised tiny model into its deployed form, writes `src/tinysr/pretrained/NAME.safetensors`, measures it
and bicubic on the test sets under the `standard` protocol (evaluation only: nothing is selected on them), and
replaces those models' rows in `models.json` (other rows are kept). The training command of each row is read from the run's
`command.txt` if present, else rebuilt from its config.json. Every row records its file's size and sha256, which
`tinysr.pretrained` checks before loading.

    python tools/bundle_pretrained.py tiny-1k-x2=runs/cpu/tiny-pareto/tiny-1k-x2 ... [--data ../shared/data]
    python tools/bundle_pretrained.py --seal

--seal writes the tensors' digest into every bundled file whose header lacks one (the header only: the tensors'
bytes stay as they are, so every output and PSNR is unchanged) and refreshes each row's bytes and sha256.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
from dataclasses import asdict
from pathlib import Path

from safetensors import safe_open

from tinysr.integrity import Tensors, digest
from tinysr.models.weights import canonical_safetensors, load_model, save_weights
from tinysr.data.folder import decode_all, image_folder
from tinysr.evaluate import bicubic_upscaler, evaluate
from tinysr.models.window import upscale_array
from tinysr.metrics import PROTOCOLS
from tinysr.models import count_params, deployed
from tinysr.train.polish import PolishConfig
from tinysr.pretrained import PRETRAINED_DIR, TABLE, TABLE_FORMAT, file_sha256, read_table
from tinysr.train.runs import read_json

TEST_SETS = ("Set5", "Set14", "BSD100", "Urban100")
REPO = Path(__file__).resolve().parents[1]
POLISH_DEFAULTS = {"steps": PolishConfig.steps, "evals_per_step": PolishConfig.evals_per_step,
                   "history": PolishConfig.history}


def train_command(run: Path) -> str:
    """The run's command.txt; for a `tinysr polish` run, its source run's command followed by the polish."""
    saved = run / "command.txt"
    if saved.is_file():
        return saved.read_text().strip()
    config = read_json(run / "config.json") if (run / "config.json").is_file() else {}
    polish = config.get("polish")
    if polish is None:
        return f"(see {run.name}/config.json)"
    source = Path(polish["source_run"])
    options = [f"--{name.replace('_', '-')} {polish[name]}" for name, default in POLISH_DEFAULTS.items()
               if polish[name] != default]
    return " ".join([f"{train_command(source)} && tinysr polish {_shown(source)} --out {_shown(run)}", *options])


def train_wall(run: Path) -> float | None:
    """Seconds of wall time the run's own clock recorded (the last `wall_time` of its metrics.jsonl, which a resume
    carries on), plus its source run's for a `tinysr polish` run; None where a run recorded none. An --init source
    is not counted: it is a bundled model of its own, with its own row."""
    metrics = run / "metrics.jsonl"
    lines = metrics.read_text().splitlines() if metrics.is_file() else []
    walls = [json.loads(line).get("wall_time") for line in lines if line.strip()]
    if not walls or walls[-1] is None:
        return None
    polish = (read_json(run / "config.json") if (run / "config.json").is_file() else {}).get("polish")
    source = train_wall(Path(polish["source_run"])) if polish else 0.0
    return None if source is None else round(walls[-1] + source, 1)


def _shown(path: Path) -> str:
    """A path as the commands show it: relative to the repository when inside it."""
    path = path.resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def measure_all(upscalers: dict, scale: int, data: Path) -> dict[str, dict[str, float]]:
    """{name: {test set: mean PSNR}} under the standard protocol."""
    out: dict[str, dict[str, float]] = {name: {} for name in upscalers}
    for test_set in TEST_SETS:
        images = [(p.stem, img) for p, img in decode_all(image_folder(data / test_set), strict=True)]
        for name, fn in upscalers.items():
            report = evaluate(fn, images, scale=scale, protocol=PROTOCOLS["standard"], dataset=test_set)
            out[name][test_set] = round(report.mean["psnr"], 3)
            print(f"{name:<16} x{scale} {test_set:<9} {out[name][test_set]:.3f}", flush=True)
    return out


def seal(path: Path) -> bool:
    """Write the tensors' digest (`tinysr.integrity.digest`) into `path`'s header if it has none; True if it was
    written. Only the JSON header changes: the tensor bytes, and their offsets (relative to the data), stay."""
    with safe_open(str(path), framework="np") as f:
        metadata = f.metadata() or {}
        tensors = Tensors({key: f.get_tensor(key) for key in f.keys()})
    found, wanted = metadata.get("tinysr_sha256"), digest(tensors)
    if found is not None:
        if found != wanted:
            raise SystemExit(f"{path}: records a digest its tensors do not have; re-bundle it from its run")
        return False
    data = path.read_bytes()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    header["__metadata__"] = {**header["__metadata__"], "tinysr_sha256": wanted}
    text = json.dumps(header).encode()
    sealed = canonical_safetensors(len(text).to_bytes(8, "little") + text + data[8 + n:])
    assert sealed.endswith(data[8 + n:])  # the tensors' bytes, unchanged
    path.write_bytes(sealed)
    return True


def write_table(rows: list[dict]) -> None:
    """models.json with `rows`, each row's bytes and sha256 taken from its file as it is now."""
    for row in rows:
        path = PRETRAINED_DIR / row["file"]
        row.update(bytes=path.stat().st_size, sha256=file_sha256(path))
    table = {"format": TABLE_FORMAT, "models": rows}
    (PRETRAINED_DIR / TABLE).write_text(json.dumps(table, indent=2) + "\n")


def seal_all() -> None:
    rows = [asdict(row) for row in read_table()]
    for row in rows:
        print(f"{row['file']}: {'digest written' if seal(PRETRAINED_DIR / row['file']) else 'has its digest'}")
    write_table(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", metavar="NAME=RUN")
    parser.add_argument("--data", default=os.environ.get("TINYSR_DATA", str(REPO.parent / "shared" / "data")))
    parser.add_argument("--seal", action="store_true", help="digest every bundled file and refresh the table")
    args = parser.parse_args()
    if args.seal:
        seal_all()
        return
    if not args.models:
        parser.error("give NAME=RUN pairs, or --seal")
    rows, by_scale = [], {}
    for item in args.models:
        name, run = item.split("=", 1)
        model, meta = load_model(Path(run) / "best.safetensors")
        model = deployed(model)
        path = PRETRAINED_DIR / f"{name}.safetensors"
        save_weights(path, model, meta={"source_run_step": meta.get("step"), "val_psnr": meta.get("val_psnr")})
        rows.append({"name": name, "file": path.name, "scale": model.config.scale, "params": count_params(model),
                     "bytes": 0, "sha256": "", "train_command": train_command(Path(run)),
                     "train_wall_s": train_wall(Path(run)),
                     "protocol": "standard", "psnr": {}})
        by_scale.setdefault(model.config.scale, {})[name] = functools.partial(upscale_array, model)
    for scale, upscalers in by_scale.items():
        results = measure_all({f"bicubic-x{scale}": bicubic_upscaler(scale), **upscalers}, scale, Path(args.data))
        for row in rows:
            if row["name"] in results:
                row["psnr"] = results[row["name"]]
                row["psnr"].update({f"bicubic {k}": v for k, v in results[f"bicubic-x{scale}"].items()})
    new = {row["name"]: row for row in rows}  # a named model's row is replaced in place, the others kept as they are
    old = [new.pop(row.name, None) or asdict(row) for row in read_table()]
    write_table(old + list(new.values()))


if __name__ == "__main__":
    main()
