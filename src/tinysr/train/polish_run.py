"""Polish a run folder: RUN's best net, polished by `tinysr.train.polish`, into a new run folder OUT.

OUT is a run folder like any other (config.json, metrics.jsonl, best.safetensors, status.json), so `tinysr eval`,
`tinysr report` and the bundling tool read it as they read RUN. Its config.json is RUN's with the deployed model's
config and a "polish" entry (the `PolishConfig`, the source run and its checkpoint). The training and held-out
images are RUN's own, rebuilt from its config.json and checked against its recorded held-out names. RUN may be
finished or still running: its best.safetensors is what is polished.

Steps of `polish_run`:
1. RUN's config.json and best weights (the deployed net, float32); every refusal comes here, before OUT exists;
2. RUN's training and held-out images and OUT opened, by `tinysr.train.start.start_run` (as every run starts);
3. `tinysr.train.polish.polish` with a logger that writes a metrics line per step and best.safetensors
   whenever validation improves;
4. status.json "finished" last; Ctrl-C or an error leaves "interrupted" or "failed" at the last step done.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from tqdm import tqdm

from tinysr.errors import TinySRError
from tinysr.metrics import PROTOCOLS
from tinysr.models import config_to_dict, deployed
from tinysr.models.weights import load_model
from tinysr.train import runs
from tinysr.train.config import RunConfig
from tinysr.train.loop import validate
from tinysr.train.polish import PolishConfig, PolishResult, check_polishable, polish
from tinysr.train.start import StartedRun, start_run


def read_source(run: Path) -> tuple[RunConfig, Any, dict[str, Any]]:
    """(config.json, deployed float32 model, checkpoint meta) of the run to polish."""
    config = runs.read_run_config(run)
    weights = run / runs.RUN_BEST
    if not weights.is_file():
        raise TinySRError(f"{weights}: no best weights (has the run validated yet?)")
    if config.data.hr_downscale != 1:
        raise TinySRError(f"{run}: trained on HR images shrunk by {config.data.hr_downscale} (Table I); "
                          "polish does not polish such runs")
    model, meta = load_model(weights)
    return config, deployed(model).float(), meta


class StepLog:
    """`tinysr.train.polish.OnStep` for a run folder: a metrics line per step, best.safetensors when validation
    improves, status.json, and the progress bar."""

    def __init__(self, out: Path, model: Any, config: PolishConfig, *, progress: bool) -> None:
        self.out, self.model, self.config, self.done = out, model, config, 0
        self.bar = tqdm(total=config.steps, desc="polish", unit="step", disable=not progress)

    def __call__(self, step: int, train_psnr: float, val_psnr: float, val_ssim: float, seconds: float,
                 improved: bool) -> None:
        runs.append_metrics(self.out, {"step": step, "train_psnr": train_psnr, "val_psnr": val_psnr,
                                       "val_ssim": val_ssim, "wall_time": seconds})
        if improved:
            runs.save_best(self.out, self.model, step=step, val_psnr=val_psnr, protocol=self.config.protocol)
        runs.write_status(self.out, state="running", step=step, steps=self.config.steps)
        self.done = step
        self.bar.update(1 if step else 0)
        self.bar.set_postfix(train=f"{train_psnr:.3f}", val=f"{val_psnr:.3f}")


def polish_run(run: Path, out: Path, *, steps: int | None = None, evals_per_step: int | None = None,
               history: int | None = None, force: bool = False, threads: int | None = None,
               progress: bool = True) -> PolishResult:
    """Polish RUN's best net into the new run folder OUT; None options keep `PolishConfig`'s defaults.

    Every refusal (a TinySRError) comes before OUT is touched. Ctrl-C or an error leaves OUT's status.json
    "interrupted" or "failed" at its last step, with the best step so far in best.safetensors, and is re-raised.
    `threads`: torch CPU threads while polishing (restored after; None: as they are).
    """
    run, out = Path(run), Path(out)
    if out.resolve() == run.resolve():
        raise TinySRError(f"--out {out}: polishing writes a new run folder, not into RUN")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise TinySRError(f"{out}: already exists; polish into a new folder, or give --force to replace its run files")
    source, model, meta = read_source(run)
    given = {"steps": steps, "evals_per_step": evals_per_step, "history": history}
    config = PolishConfig(**{k: v for k, v in given.items() if v is not None}, protocol=source.protocol)
    check_polishable(model.config, PROTOCOLS[config.protocol])
    record = dataclasses.replace(source, model=config_to_dict(model.config), polish={
        **dataclasses.asdict(config), "source_run": str(run.resolve()), "source_step": meta.get("step"),
        "source_val_psnr": meta.get("val_psnr")})
    with start_run(record, out, resume=False, force=force, threads=threads, progress=progress,
                   model=model) as started:
        return _polish_into(started, config, progress=progress)


def _polish_into(started: StartedRun, config: PolishConfig, *, progress: bool) -> PolishResult:
    """Step 3-4: polish the started run's model, logging into its folder; status.json says how it ended."""
    out, model, val_pairs = started.run_dir, started.model, started.val_pairs
    log = StepLog(out, model, config, progress=progress)
    limit = started.config.train.val_limit  # validate as the run did, so that step 0 is its best
    try:
        result = polish(model, started.train_pairs, val_pairs, config=config, on_step=log,
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
