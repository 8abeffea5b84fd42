"""tinysr.export.spandrel and `tinysr export --format spandrel`: compact nets as the state dict that the real spandrel
package detects as Compact, at the right scale, and runs to tinysr.upscale's pixels on Set5.

spandrel runs in a venv of its own, built by tools/spandrel_venv.sh (PyPI's torch 2.13.0, a CUDA build that runs on
CPU, torchvision 0.28.0 and spandrel 0.4.2; 4.9 GB, built in about 4 minutes): spandrel imports torchvision, and
PyPI's torchvision fails to import beside tinysr's CPU torch (`operator torchvision::nms does not exist`). A small
script (`PROBE`, which imports no tinysr) loads each export there, as chaiNNer does, and writes its outputs for this
process to compare. Without that venv the tests that need it fail, naming the script; they never skip.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open

from tinysr.api import load_model, upscale
from tinysr.cli import main
from tinysr.data.degrade import bicubic_uint8, mod_crop
from tinysr.data.io import read_image
from tinysr.errors import TinySRError
from tinysr.evaluate import bicubic_upscaler
from tinysr.export.spandrel import export_spandrel, spandrel_state_dict
from tinysr.metrics import PROTOCOLS, measure
from tinysr.models.weights import save_weights
from tinysr.pretrained import pretrained_path

from helpers import random_edsr

pytestmark = pytest.mark.usefixtures("one_thread")

REPO = Path(__file__).resolve().parents[1]
#: The nets exported: x2, x4 and x3, of 3, 4 and 6 convs (spandrel's num_conv 1, 2 and 4).
NETS = {"x2": ("compact-1k-x2", {}), "x4": ("compact-5k-x4", {}), "x3": ("compact-20k-x2", {"scale": 3})}
#: Each file through spandrel's loader (`ModelLoader.load_from_file`, what chaiNNer and ComfyUI call) and its call
#: API (`ImageModelDescriptor.__call__`: NCHW float32 RGB 0..1 in, padded to the net's size rule, run, clamped to
#: 0..1); to uint8 here by times 255, rounded half to even (tinysr's quantisation).
PROBE = r"""
import json, sys
import numpy as np, torch
from spandrel import MAIN_REGISTRY, ModelLoader

torch.set_num_threads(1)
job, report = json.loads(sys.stdin.read()), []
for item in job:
    loader = ModelLoader()
    state = loader.load_state_dict_from_file(item["file"])
    desc = loader.load_from_file(item["file"]).eval()
    net = desc.model
    report.append({
        "detected_by": [a.architecture.id for a in MAIN_REGISTRY.architectures("detection") if a.detect(state)],
        "architecture": desc.architecture.id, "scale": desc.scale, "purpose": desc.purpose,
        "input_channels": desc.input_channels, "output_channels": desc.output_channels, "tags": desc.tags,
        "net": [type(net).__name__, net.num_feat, net.num_conv, net.upscale, net.act_type],
    })
    for i, path in enumerate(item["images"]):
        lr = torch.from_numpy(np.load(path)).permute(2, 0, 1)[None].float() / 255.0
        with torch.no_grad():
            sr = desc(lr)[0].permute(1, 2, 0).numpy()
        np.save(item["out"] + f"/{i}.npy", np.round(sr * 255.0).astype(np.uint8))
print(json.dumps(report))
"""


def random_compact(name: str, **overrides) -> torch.nn.Module:
    return random_edsr(name, std=0.05, seed=1, **overrides)


def within_parity(a: np.ndarray, b: np.ndarray) -> bool:
    """tinysr's parity rule for two float paths to uint8: within 1 grey level, and off by one on <= 0.1 % of values."""
    diff = np.abs(a.astype(np.int16) - b.astype(np.int16))
    return a.shape == b.shape and int(diff.max()) <= 1 and float((diff > 0).mean()) <= 1e-3


@pytest.fixture(scope="session")
def spandrel_python() -> Path:
    """The spandrel venv's python; a clear failure (never a skip) when tools/spandrel_venv.sh has not built it."""
    check = subprocess.run([str(REPO / "tools" / "spandrel_venv.sh"), "--check"], capture_output=True, text=True)
    if check.returncode != 0:
        pytest.fail(check.stderr.strip() or f"tools/spandrel_venv.sh --check exited {check.returncode}")
    return Path(check.stdout.strip()) / "bin" / "python"


def run_probe(python: Path, job: list[dict]) -> list[dict]:
    done = subprocess.run([str(python), "-c", PROBE], input=json.dumps(job), capture_output=True, text=True,
                          timeout=600, env={**os.environ, "PYTHONPATH": ""})
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def set5(data_dir) -> dict[str, np.ndarray]:
    return {p.stem: read_image(p)[0] for p in sorted((data_dir / "Set5").glob("*.png"))}


# ---------------------------------------------------------------- the files (no spandrel needed)

def test_the_export_is_the_state_dict_in_spandrels_layout(tmp_path):
    model = random_compact("compact-1k-x2")
    export_spandrel(model, tmp_path / "m.safetensors")
    export_spandrel(model, tmp_path / "m.pth")
    expected = {k: v.numpy() for k, v in model.state_dict().items()}
    with safe_open(str(tmp_path / "m.safetensors"), framework="np") as f:
        written = {k: f.get_tensor(k) for k in f.keys()}
    pth = torch.load(tmp_path / "m.pth", weights_only=True)
    assert list(pth) == ["body.0.weight", "body.0.bias", "body.1.weight", "body.2.weight", "body.2.bias",
                         "body.3.weight", "body.4.weight", "body.4.bias"] == list(spandrel_state_dict(model))
    for state in (written, {k: v.numpy() for k, v in pth.items()}):
        assert state.keys() == expected.keys()
        assert all(state[k].dtype == np.float32 and np.array_equal(state[k], expected[k]) for k in expected)
    net = load_model(tmp_path / "m.safetensors")  # the .safetensors export is a tinysr weights file too
    assert net.config == model.config and net.n_params == 932


def test_other_families_and_suffixes_are_refused_and_nothing_is_written(tmp_path):
    for name in ("tiny-1k-x2", "edsr-tiny"):
        with pytest.raises(TinySRError) as err:
            export_spandrel(random_edsr(name), tmp_path / "m.safetensors")
        family = name.split("-")[0]
        assert str(err.value) == (f"--format spandrel exports only compact nets (spandrel's Compact); this is a "
                                  f"{family} net")
    with pytest.raises(TinySRError, match=r"m\.onnx: --format spandrel writes a \.safetensors or a \.pth file"):
        export_spandrel(random_compact("compact-1k-x2"), tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


def test_cli_export_spandrel(tmp_path, capsys):
    weights, tiny = tmp_path / "compact.safetensors", tmp_path / "tiny.safetensors"
    save_weights(weights, random_compact("compact-5k-x4"))
    save_weights(tiny, random_edsr("tiny-1k-x2"))
    for suffix in (".safetensors", ".pth"):
        out = tmp_path / f"out{suffix}"
        assert main(["export", "--model", str(weights), "--format", "spandrel", str(out)]) == 0
        assert f"wrote {out} (spandrel, " in capsys.readouterr().out and out.is_file()
    assert np.array_equal(load_model(tmp_path / "out.safetensors").arrays["body.6.weight"],
                          load_model(weights).arrays["body.6.weight"])
    cases = [(tiny, "new.safetensors", "--format spandrel exports only compact nets (spandrel's Compact); this is "
                                       "a tiny net"),
             (weights, "out.safetensors", "exists; pass --force"),
             (weights, "new.onnx", "--format spandrel writes")]
    for model, name, message in cases:
        assert main(["export", "--model", str(model), "--format", "spandrel", str(tmp_path / name)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("tinysr: error: ") and message in err and "\n" not in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["compact.safetensors", "out.pth", "out.safetensors",
                                                         "tiny.safetensors"]


# ---------------------------------------------------------------- in spandrel

@pytest.fixture(scope="module")
def spandrel_runs(spandrel_python, set5, tmp_path_factory):
    """Each net of `NETS` exported as .safetensors and .pth, loaded and run on Set5 by spandrel: {key: (model,
    LR images, {suffix: (report, outputs)})}."""
    root = tmp_path_factory.mktemp("spandrel")
    job, cases = [], {}
    for key, (name, overrides) in NETS.items():
        model = random_compact(name, **overrides)
        scale = model.config.scale
        lrs = [bicubic_uint8(mod_crop(hr, scale), scale) for hr in set5.values()]
        images = []
        for i, lr in enumerate(lrs):
            images.append(str(root / f"{key}-lr{i}.npy"))
            np.save(images[-1], lr)
        for suffix in (".safetensors", ".pth"):
            export_spandrel(model, root / f"{key}{suffix}")
            out = root / f"{key}{suffix}.out"
            out.mkdir()
            job.append({"file": str(root / f"{key}{suffix}"), "images": images, "out": str(out)})
        cases[key] = (model, lrs)
    reports = iter(run_probe(spandrel_python, job))
    return {key: (model, lrs, {suffix: (next(reports), [np.load(root / f"{key}{suffix}.out" / f"{i}.npy")
                                                         for i in range(len(lrs))])
                               for suffix in (".safetensors", ".pth")})
            for key, (model, lrs) in cases.items()}


@pytest.mark.parametrize("key", sorted(NETS))
def test_spandrel_detects_compact_at_the_right_scale(spandrel_runs, key):
    """Compact, and no other architecture before it in spandrel's detection order, takes each export."""
    model, _, runs = spandrel_runs[key]
    c = model.config
    for report, _ in runs.values():
        assert report["detected_by"][0] == report["architecture"] == "Compact", report["detected_by"]
        assert (report["scale"], report["input_channels"], report["output_channels"]) == (c.scale, 3, 3)
        assert report["net"] == ["SRVGGNetCompact", c.n_feats, c.n_layers - 2, c.scale, "prelu"]
        assert report["purpose"] == "SR" and report["tags"] == [f"{c.n_feats}nf", f"{c.n_layers - 2}nc"]


@pytest.mark.parametrize("key", sorted(NETS))
def test_spandrel_output_equals_tinysr_upscale_on_set5(spandrel_runs, key, tmp_path):
    """The same file through spandrel (0..1, clamped) and through tinysr.upscale (0..255): equal pixels within
    parity on each Set5 image, and the nets do change the nearest-upsampled image (not a trivial match)."""
    model, lrs, runs = spandrel_runs[key]
    export_spandrel(model, tmp_path / "m.safetensors")
    net = load_model(tmp_path / "m.safetensors")
    s = model.config.scale
    for i, lr in enumerate(lrs):
        ours = upscale(lr, net)
        for suffix, (_, outputs) in runs.items():
            assert within_parity(outputs[i], ours), (suffix, i)
        nearest = lr.repeat(s, axis=0).repeat(s, axis=1)
        assert np.abs(ours.astype(np.int16) - nearest).mean() > 2


# ---------------------------------------------------------------- the bundled compact nets, in spandrel

#: issue 27's bar on Set5 (standard protocol, dB over bicubic from the same LR) for a bundled net loaded by spandrel.
BUNDLED_GAIN = {"compact-5k-x2": 2.0, "compact-5k-x4": 0.9}


@pytest.fixture(scope="module")
def bundled_runs(spandrel_python, set5, tmp_path_factory):
    """Each bundled compact net of `BUNDLED_GAIN` as shipped (its .safetensors file, which spandrel reads as it is)
    and as `tinysr export --format spandrel` writes it (.pth), run on Set5 by spandrel: {name: (HRs, LRs, {kind:
    (report, outputs)})}."""
    root = tmp_path_factory.mktemp("bundled")
    job, cases = [], {}
    for name in BUNDLED_GAIN:
        net = load_model(name)
        hrs = [mod_crop(hr, net.scale) for hr in set5.values()]
        lrs = [bicubic_uint8(hr, net.scale) for hr in hrs]
        images = []
        for i, lr in enumerate(lrs):
            images.append(str(root / f"{name}-lr{i}.npy"))
            np.save(images[-1], lr)
        assert main(["export", "--model", name, "--format", "spandrel", str(root / f"{name}.pth")]) == 0
        for kind, file in (("bundled", pretrained_path(name)), ("pth", root / f"{name}.pth")):
            out = root / f"{name}-{kind}.out"
            out.mkdir()
            job.append({"file": str(file), "images": images, "out": str(out)})
        cases[name] = (hrs, lrs)
    reports = iter(run_probe(spandrel_python, job))
    return {name: (hrs, lrs, {kind: (next(reports), [np.load(root / f"{name}-{kind}.out" / f"{i}.npy")
                                                     for i in range(len(lrs))])
                              for kind in ("bundled", "pth")})
            for name, (hrs, lrs) in cases.items()}


@pytest.mark.parametrize("name", sorted(BUNDLED_GAIN))
def test_spandrel_runs_the_bundled_net_to_tinysrs_pixels_and_its_set5_gain(bundled_runs, name):
    """spandrel takes the shipped file and its .pth export as Compact (no architecture before it), at the net's
    scale; its outputs equal tinysr.upscale's within parity on every Set5 image; and on Set5 they beat bicubic from
    the same LR by issue 27's bar (standard protocol: Y, border crop)."""
    hrs, lrs, runs = bundled_runs[name]
    net = load_model(name)
    standard = PROTOCOLS["standard"]
    ours = [upscale(lr, name) for lr in lrs]
    for kind, (report, outputs) in runs.items():
        assert report["detected_by"][0] == report["architecture"] == "Compact", (kind, report["detected_by"])
        assert (report["scale"], report["input_channels"], report["output_channels"]) == (net.scale, 3, 3)
        assert all(within_parity(a, b) for a, b in zip(outputs, ours)), kind
    _, outputs = runs["bundled"]
    gain = np.mean([measure(sr, hr, scale=net.scale, protocol=standard)[0] for sr, hr in zip(outputs, hrs)]) - \
        np.mean([measure(bicubic_upscaler(net.scale)(lr), hr, scale=net.scale, protocol=standard)[0]
                 for lr, hr in zip(lrs, hrs)])
    assert gain >= BUNDLED_GAIN[name], (name, gain)
