"""Nothing silently wrong: damaged weights and checkpoints are one-line errors naming the file, NaN and huge weights
are refused, weights without a digest need trust, and a malformed config costs nothing to refuse (tinysr.integrity,
models.weights, train.runs). The issue-25 adversarial cases are in test_reliability_inputs.py."""

import json
import struct
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import save

from tinysr.cli import main
from tinysr.errors import TinySRError
from tinysr.integrity import MAX_MAGNITUDE, check_number, check_weight_values, digest
from tinysr.models.weights import load_model, save_weights
from tinysr.pretrained import pretrained_path
from tinysr.train import runs
from helpers import random_edsr


@pytest.fixture
def weights(tmp_path):
    path = tmp_path / "w.safetensors"
    save_weights(path, random_edsr("edsr-tiny"))
    return path


def _flip(path, offset_from_end=20):
    data = bytearray(path.read_bytes())
    data[-offset_from_end] ^= 0x40
    path.write_bytes(bytes(data))


def test_digest_is_canonical_and_sees_every_change():
    a = {"b": torch.arange(6, dtype=torch.float32).reshape(2, 3), "a": [1, 2.5, "x"]}
    same = {"a": [1, 2.5, "x"], "b": torch.arange(6, dtype=torch.float32).reshape(2, 3)}
    assert digest(a) == digest(same)  # key order does not matter
    assert digest(a) != digest({**a, "b": a["b"].reshape(3, 2)})  # shape
    assert digest(a) != digest({**a, "b": a["b"].double()})  # dtype
    changed = a["b"].clone()
    changed[1, 2] += 1e-6
    assert digest(a) != digest({**a, "b": changed})


def test_a_flipped_byte_in_weights_is_one_line_naming_the_file(weights):
    load_model(weights)
    _flip(weights)
    with pytest.raises(TinySRError, match=r"w\.safetensors: content does not match its recorded sha256"):
        load_model(weights)


def test_a_truncated_weights_file_is_one_line(weights):
    weights.write_bytes(weights.read_bytes()[:-30])
    with pytest.raises(TinySRError, match=r"w\.safetensors: not a readable safetensors file"):
        load_model(weights)


def test_nan_weights_are_refused(tmp_path):
    model = random_edsr("edsr-tiny")
    with torch.no_grad():
        next(model.parameters()).view(-1)[0] = float("nan")
    save_weights(tmp_path / "nan.safetensors", model)
    with pytest.raises(TinySRError, match=r"nan\.safetensors: weights '.*' hold NaN or infinity"):
        load_model(tmp_path / "nan.safetensors")
    with pytest.raises(TinySRError, match="hold NaN"):
        check_weight_values({"x": torch.tensor([1.0, float("inf")])}, path="p")


def test_weight_and_config_bounds_are_inclusive_and_name_the_value():
    check_weight_values({"x": torch.tensor([-MAX_MAGNITUDE, MAX_MAGNITUDE]), "i": torch.tensor([10**9])}, path="p")
    with pytest.raises(TinySRError, match=r"^p: weights 'x' reach 1\.5e\+04, beyond the 10000"):
        check_weight_values({"x": np.array([0.5, -1.5e4], np.float32)}, path="p")
    check_number(MAX_MAGNITUDE, what="config res_scale", path="p")
    check_number(10**9, what="config n_feats", path="p")  # ints are the config's own checks' business
    with pytest.raises(TinySRError, match=r"^p: config res_scale is -inf; a finite number within 10000 expected$"):
        check_number(float("-inf"), what="config res_scale", path="p")


def _with_config(tmp_path, config_text):
    state = {k: v.contiguous() for k, v in random_edsr("edsr-tiny").state_dict().items()}
    path = tmp_path / "bad.safetensors"
    path.write_bytes(save(state, metadata={"tinysr_config": config_text, "tinysr_sha256": digest(state)}))
    return path


@pytest.mark.parametrize("config_text, message", [
    ("{not json", "its tinysr config is not JSON"),
    (json.dumps({"family": "edsr", "n_blocks": 0, "n_feats": 4, "scale": 0}), "bad.safetensors: "),
    (json.dumps({"family": "edsr", "n_blocks": 0, "n_feats": 3_000_000, "scale": 2}),
     "weights do not match the config"),  # would ask for hundreds of GB: refused on the meta device
    (json.dumps([1, 2]), "bad.safetensors: "),
])
def test_a_malformed_config_is_one_line(tmp_path, config_text, message):
    with pytest.raises(TinySRError, match=message):
        load_model(_with_config(tmp_path, config_text))


def test_an_exported_model_passed_as_weights_says_what_it_is(tmp_path, capsys):
    onnx = tmp_path / "tiny.onnx"
    onnx.write_bytes(b"\x08\x07")
    assert main(["eval", "--model", str(onnx), "--data", str(tmp_path), "--scale", "2"]) == 2
    err = capsys.readouterr().err
    assert "an ONNX export: run it with onnxruntime" in err and "pickle" not in err


def test_a_flipped_byte_in_last_pt_is_refused_on_resume(tmp_path):
    state = {"step": 10, "model": random_edsr("edsr-tiny").state_dict(), "rng": torch.get_rng_state()}
    runs.save_last(tmp_path, state)
    assert runs.load_last(tmp_path)["step"] == 10
    path = tmp_path / runs.LAST
    raw = bytearray(path.read_bytes())
    needle = struct.pack("<f", float(state["model"]["head.weight"].view(-1)[3]))
    at = raw.find(needle)
    assert at > 0
    raw[at] ^= 0x01  # one weight changes in its last mantissa bit: the zip still reads
    path.write_bytes(bytes(raw))
    with pytest.raises(TinySRError, match=r"last\.pt: content does not match its recorded sha256"):
        runs.load_last(tmp_path)
    path.write_bytes(bytes(raw[: len(raw) // 2]))
    with pytest.raises(TinySRError, match=r"last\.pt: not a readable checkpoint"):
        runs.load_last(tmp_path)


def test_bundled_weights_load_through_their_digest(recwarn):
    model, _ = load_model(pretrained_path("tiny-1k-x2"))
    assert sum(p.numel() for p in model.parameters()) == 940 and not recwarn.list  # checked, not trusted


def test_cli_one_line_for_damaged_weights(weights):
    _flip(weights)
    result = subprocess.run([sys.executable, "-m", "tinysr", "export", "--model", str(weights), "--format", "onnx",
                             str(weights.with_suffix(".onnx"))], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "content does not match its recorded sha256" in result.stderr
    assert not weights.with_suffix(".onnx").exists()


def test_equal_weights_give_equal_bytes_across_processes(tmp_path):
    """safetensors writes its header from a hash map; `canonical_safetensors` sorts it, so a run's weights are a
    function of its config down to the file's bytes."""
    code = ("import sys; sys.path.insert(0, sys.argv[2]); from helpers import random_edsr\n"
            "from tinysr.models.weights import save_weights\n"
            "save_weights(sys.argv[1], random_edsr('edsr-tiny'), meta={'step': 3, 'val_psnr': 30.5, 'z': 1, 'a': 2})")
    from pathlib import Path

    files = [tmp_path / f"w{i}.safetensors" for i in range(3)]
    for f in files:
        subprocess.run([sys.executable, "-c", code, str(f), str(Path(__file__).parent)], check=True, timeout=120)
    assert len({f.read_bytes() for f in files}) == 1
    load_model(files[0])


@pytest.mark.parametrize("damage", ["truncated", "flipped quote", "flipped brace"])
def test_a_damaged_config_json_is_one_line_on_resume(tmp_path, damage):
    from tinysr.train.config import DataConfig, RunConfig, TrainConfig

    config = RunConfig(model={"n_blocks": 0, "n_feats": 4, "scale": 2, "family": "edsr"}, train=TrainConfig(steps=10),
                       data=DataConfig(train=("/d",), val="/v", scale=2), protocol="study", seed=0)
    run = runs.open_run(tmp_path / "run", config)
    text = (run / runs.CONFIG).read_text()
    text = {"truncated": text[: len(text) // 2], "flipped quote": text.replace('"', "'", 1),
            "flipped brace": "[" + text[1:]}[damage]
    (run / runs.CONFIG).write_text(text)
    result = subprocess.run([sys.executable, "-m", "tinysr", "train", "--resume", str(run)], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert f"{run / runs.CONFIG}: " in result.stderr
