"""`tinysr polish RUN --out OUT`: polish a finished run's best weights into a new run folder (`tinysr.polish`).

OUT is a run folder like any other (config.json, metrics.jsonl, best.safetensors, status.json), so `tinysr eval`,
`tinysr report` and the bundling tool read it as they read RUN. Its config.json is RUN's with the deployed model's
config and a "polish" entry (the `PolishConfig`, the source run and its checkpoint). The training and held-out
images are RUN's own, rebuilt from its config.json and checked against its recorded held-out names.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

from tinysr.cli_types import positive_int
from tinysr.errors import TinySRError


def add_polish_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("polish", help="fit a run's best net on whole training images to mean PSNR (L-BFGS)",
                       description="Last stage for small nets: maximise the validation protocol's mean PSNR on the "
                                   "run's whole training images by full-batch L-BFGS, validating after each step "
                                   "and keeping the best on the run's held-out images.")
    p.add_argument("run", metavar="RUN", help="a run folder with best.safetensors")
    p.add_argument("--out", required=True, metavar="OUT", help="the new run folder")
    p.add_argument("--steps", type=positive_int, help="L-BFGS steps, each validated (default 8)")
    p.add_argument("--evals-per-step", type=positive_int, help="L-BFGS iterations per step, each one or more passes over the training set "
                   "(default 10)")
    p.add_argument("--history", type=positive_int, help="L-BFGS memory (default 20)")
    p.add_argument("--threads", type=positive_int, help="torch CPU threads")
    p.add_argument("--force", action="store_true", help="overwrite OUT")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run_polish(args: argparse.Namespace) -> int:
    import torch

    threads = torch.get_num_threads()
    try:
        if args.threads:
            torch.set_num_threads(args.threads)
        return _polish_command(args)
    finally:  # main() may be called in-process
        torch.set_num_threads(threads)


def _source(run: Path) -> tuple[dict[str, Any], Any, dict[str, Any]]:
    """(config.json, deployed float32 model, checkpoint meta) of the run to polish."""
    from tinysr import runs
    from tinysr.checkpoint import load_model
    from tinysr.models import deployed

    config = runs.read_config(run)
    weights = run / runs.RUN_BEST
    if not weights.is_file():
        raise TinySRError(f"{weights}: no best weights (has the run validated yet?)")
    model, meta = load_model(weights)
    return config, deployed(model).float(), meta


def _load_split(config: dict[str, Any], *, run: Path, progress: bool) -> tuple[Any, Any]:
    """The run's training and held-out pairs; refuses a split that no longer gives the recorded held-out images."""
    from tinysr.train_cli import load_data

    recorded = config["data"].get("val_names")
    train_pairs, val_pairs = load_data(config, progress=progress)
    if recorded is not None and list(val_pairs.names) != list(recorded):
        raise TinySRError(f"{run}: the training folders now give other held-out images than the run recorded "
                          f"({', '.join(recorded)}); polishing would validate on images it trains on")
    return train_pairs, val_pairs


class _StepLog:
    """`tinysr.polish.OnStep` for a run folder: a metrics line per step, best.safetensors when validation improves,
    status.json, and the progress bar."""

    def __init__(self, out: Path, model: Any, config: Any, *, progress: bool) -> None:
        from tqdm import tqdm

        self.out, self.model, self.config, self.done = out, model, config, 0
        self.bar = tqdm(total=config.steps, desc="polish", unit="step", disable=not progress)

    def __call__(self, step: int, train_psnr: float, val_psnr: float, val_ssim: float, seconds: float,
                 improved: bool) -> None:
        from tinysr import runs

        runs.append_metrics(self.out, {"step": step, "train_psnr": train_psnr, "val_psnr": val_psnr,
                                       "val_ssim": val_ssim, "wall_time": seconds})
        if improved:
            runs.save_best(self.out, self.model, step=step, val_psnr=val_psnr, protocol=self.config.protocol)
        runs.write_status(self.out, state="running", step=step, steps=self.config.steps)
        self.done = step
        self.bar.update(1 if step else 0)
        self.bar.set_postfix(train=f"{train_psnr:.3f}", val=f"{val_psnr:.3f}")


def polish_run(run: Path, out: Path, *, steps: int | None = None, evals_per_step: int | None = None,
               history: int | None = None, force: bool = False, progress: bool = True) -> Any:  # -> PolishResult
    """Polish RUN's best net into the new run folder OUT; None options keep `PolishConfig`'s defaults.

    Every refusal (a TinySRError) comes before OUT exists. Ctrl-C or an error leaves OUT's status.json
    "interrupted" or "failed" at its last step, with the best step so far in best.safetensors, and is re-raised.
    """
    from tinysr import runs
    from tinysr.metrics import PROTOCOLS
    from tinysr.models import config_to_dict
    from tinysr.polish import PolishConfig, check_polishable, polish
    from tinysr.train import validate

    run, out = Path(run), Path(out)
    if out.resolve() == run.resolve():
        raise TinySRError(f"--out {out}: polishing writes a new run folder, not into RUN")
    source, model, meta = _source(run)
    given = {"steps": steps, "evals_per_step": evals_per_step, "history": history}
    config = PolishConfig(**{k: v for k, v in given.items() if v is not None}, protocol=source["protocol"])
    check_polishable(model, PROTOCOLS[config.protocol])
    train_pairs, val_pairs = _load_split(dict(source, data=dict(source["data"])), run=run, progress=progress)
    record = dict(source, model=config_to_dict(model.config),
                  polish={**dataclasses.asdict(config), "source_run": str(run.resolve()),
                          "source_step": meta.get("step"), "source_val_psnr": meta.get("val_psnr")})
    runs.open_run(out, record, force=force)
    log = _StepLog(out, model, config, progress=progress)
    limit = source["train"].get("val_limit")  # validate as the run did, so that step 0 is its best
    try:
        result = polish(model, train_pairs, val_pairs, config=config, on_step=log,
                        validate=lambda net: validate(net, val_pairs, protocol=config.protocol, limit=limit))
    except BaseException as exc:  # Ctrl-C included: the folder must not look finished
        state = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        runs.write_status(out, state=state, step=log.done, steps=config.steps,
                          message=(str(exc).splitlines() or [state])[0])
        raise
    finally:
        log.bar.close()
    runs.write_status(out, state="finished", step=config.steps, steps=config.steps)
    return result


def _polish_command(args: argparse.Namespace) -> int:
    from tinysr.runs import RUN_BEST

    out = Path(args.out)
    try:
        result = polish_run(Path(args.run), out, steps=args.steps, evals_per_step=args.evals_per_step,
                            history=args.history, force=args.force, progress=not args.no_progress)
    except KeyboardInterrupt:
        print(f"tinysr: interrupted; {out / RUN_BEST} holds the best polish step so far", file=sys.stderr)
        return 130
    print(f"{out}: val PSNR {result.start_psnr:.3f} -> {result.best_psnr:.3f} dB at polish step {result.best_step}; "
          f"weights {out / RUN_BEST}")
    return 0
