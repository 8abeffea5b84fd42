"""`tinysr models --openmodeldb` (tinysr.cli.openmodeldb, tinysr.openmodeldb): every bundled model's entry has every
field OpenModelDB requires, with its type; its resource is the bundled file (size, SHA-256); its training fields are
what the recorded command did; the file is formatted as OpenModelDB writes it; a bad input is one line and writes
nothing."""

import dataclasses
import datetime
import hashlib
import json
import re
import shutil
from pathlib import Path
from typing import ClassVar

import pytest

from tinysr.cli import main
from tinysr.cli.openmodeldb import recorded_training
from tinysr.errors import TinySRError
from tinysr.openmodeldb import KEY_ORDER, RESOURCE_KEY_ORDER, Publication, model_entry, model_id
from tinysr.pretrained import PRETRAINED_DIR, list_pretrained, read_table

# What an entry must hold, written from OpenModelDB (github.com/OpenModelDB/open-model-database) at commit
# 782aac088bd83dd3fc438a42eb0c3868dc559110: docs/contributing/models.md ("there are a few things that are required":
# the author(s), the release date, the description, the license, tags, the architecture and colour mode; each
# resource with its URL, file size, checksum (SHA256) and platform) and the types of src/lib/model-props.ts
# (MODEL_PROPS, which validate-db applies: a prop without `optional` is required) and src/lib/schema.ts.
USER_ID = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")  # schema-util.ts UserIdPattern
TAG_ID = re.compile(r"(?:[a-z0-9]+:)?[a-z0-9]+(?:-[a-z0-9]+|[+])*")  # TagIdPattern
ARCH_ID = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+|[+])*")  # ArchIdPattern
DATE = re.compile(r"\d{4}-(?:0[1-9]|1[012])-(?:0[1-9]|[12][0-9]|3[01])")  # util.ts DATE_REGEX


def _int_in(lo, hi=None):
    return lambda v: type(v) is int and v >= lo and (hi is None or v <= hi)


def _authors(v):
    return all(isinstance(a, str) and USER_ID.fullmatch(a) for a in ([v] if isinstance(v, str) else v)) and bool(v)


def _strings(v, pattern=None):
    return isinstance(v, list) and bool(v) and all(isinstance(s, str) and s and (pattern is None or
                                                                                 pattern.fullmatch(s)) for s in v)


REQUIRED = {  # field -> its check; the guide requires license, which the schema lets be null
    "name": lambda v: isinstance(v, str) and bool(v),
    "author": _authors,
    "license": lambda v: isinstance(v, str) and bool(re.fullmatch(r"[A-Za-z0-9.\-]+(?:\s+OR\s+[A-Za-z0-9.\-]+)*", v)),
    "tags": lambda v: _strings(v, TAG_ID),
    "description": lambda v: isinstance(v, str) and bool(v) and v == v.strip(),
    "date": lambda v: isinstance(v, str) and bool(DATE.fullmatch(v)),
    "architecture": lambda v: isinstance(v, str) and bool(ARCH_ID.fullmatch(v)),
    "size": lambda v: v is None or _strings(v),  # required key, value may be null (schema: string[] | null)
    "scale": _int_in(1, 16),
    "inputChannels": _int_in(1, 4),
    "outputChannels": _int_in(1, 4),
    "resources": lambda v: isinstance(v, list) and bool(v),
    "images": lambda v: isinstance(v, list),
}
RESOURCE_REQUIRED = {
    "platform": lambda v: v in ("pytorch", "onnx", "ncnn"),
    "type": lambda v: v in ("pth", "onnx", "safetensors"),
    "size": _int_in(1),
    "sha256": lambda v: isinstance(v, str) and bool(re.fullmatch(r"[0-9a-f]{64}", v)),
    "urls": _strings,
}
PLATFORM_OF_TYPE = {"pth": "pytorch", "safetensors": "pytorch", "onnx": "onnx"}  # schema.ts PthFile, ...
TRAINING = {  # optional in the schema; the issue asks for them where the training is recorded
    "trainingIterations": _int_in(1), "trainingBatchSize": _int_in(1), "trainingHRSize": _int_in(1),
    "trainingOTF": lambda v: type(v) is bool, "dataset": lambda v: isinstance(v, str) and bool(v),
}


def problems(entry: dict, *, training: bool = True) -> list[str]:
    """Every required field that is missing or of the wrong type, as 'field' or 'resources[i].field'."""
    wanted = REQUIRED | (TRAINING if training else {})
    found = [k for k, check in wanted.items() if k not in entry or not check(entry[k])]
    for i, res in enumerate(entry.get("resources") or []):
        found += [f"resources[{i}].{k}" for k, check in RESOURCE_REQUIRED.items() if k not in res or not check(res[k])]
        mismatch = "platform" in res and PLATFORM_OF_TYPE.get(res.get("type")) not in (None, res["platform"])
        found += [f"resources[{i}].platform (of type {res['type']})"] * mismatch
    return found


def write_entry(tmp_path: Path, name: str, *options: str) -> tuple[dict, str]:
    out = tmp_path / f"{name}.json"
    assert main(["models", "--openmodeldb", name, "-o", str(out), *options]) == 0
    text = out.read_text(encoding="utf-8")
    return json.loads(text), text


ROWS = {row.name: row for row in read_table()}
PUBLISHED = ("--license", "MIT", "--url", "https://example.org/m.safetensors", "--date", "2025-01-02")


@pytest.mark.parametrize("name", list_pretrained())
def test_every_bundled_entry_has_every_required_field(tmp_path, name):
    entry, text = write_entry(tmp_path, name, *PUBLISHED)
    assert problems(entry) == []
    row = ROWS[name]
    assert (entry["scale"], entry["license"], entry["date"]) == (row.scale, "MIT", "2025-01-02")
    assert entry["resources"][0]["urls"] == ["https://example.org/m.safetensors"]
    assert f"{row.params:,} parameters" in entry["description"] and f"--model {name} " in entry["description"]
    assert ("jpeg" in entry["tags"]) == ("+jpeg" in row.train_command)
    # the file as OpenModelDB writes it: its key orders, JSON.stringify(model, undefined, 4), no final newline
    assert list(entry) == [k for k in KEY_ORDER if k in entry]
    assert list(entry["resources"][0]) == list(RESOURCE_KEY_ORDER)
    assert text == json.dumps(entry, indent=4, ensure_ascii=False) and not text.endswith("\n")


@pytest.mark.parametrize("field", [*REQUIRED, "resources[0].sha256", "resources[0].platform"])
def test_the_required_field_check_sees_each_field_missing(tmp_path, field):
    entry, _ = write_entry(tmp_path, "tiny-1k-x2", *PUBLISHED)
    if field.startswith("resources["):
        del entry["resources"][0][field.split(".")[1]]
    else:
        del entry[field]
    assert problems(entry) == [field]


@pytest.mark.parametrize("name", list_pretrained())
def test_the_resource_is_the_bundled_file(tmp_path, name):
    entry, _ = write_entry(tmp_path, name, *PUBLISHED)
    data = (PRETRAINED_DIR / ROWS[name].file).read_bytes()
    assert entry["resources"] == [{"platform": "pytorch", "type": "safetensors", "size": len(data),
                                   "sha256": hashlib.sha256(data).hexdigest(),
                                   "urls": ["https://example.org/m.safetensors"]}]
    assert (len(data), hashlib.sha256(data).hexdigest()) == (ROWS[name].bytes, ROWS[name].sha256)


def _last(option: str, command: str) -> str | None:
    found = re.findall(rf"{option} (\S+)", command)
    return found[-1] if found else None


@pytest.mark.parametrize("name", list_pretrained())
def test_training_fields_are_the_recorded_command(tmp_path, name):
    """Read back from the command's words: the last --steps, --batch-size and --patch (an experiment row's recipe
    where the command gives none), the --train-data folders (or the row's data), and --init's entry."""
    from tinysr.experiments.presets import select_rows

    entry, _ = write_entry(tmp_path, name, *PUBLISHED)
    row = ROWS[name]
    experiment = re.search(r"tinysr experiment run (\S+) --only (\S+)", row.train_command)
    spec = select_rows(experiment[1], [experiment[2]])[0] if experiment else None
    batch = _last("--batch-size", row.train_command) or spec.recipe.batch_size
    patch = _last("--patch", row.train_command) or spec.recipe.patch
    folders = re.search(r"--train-data ((?:[^-\s]\S* ?)+)", row.train_command)
    dataset = "+".join(p.split("/")[-1] for p in folders[1].split()) if folders else spec.data.name
    assert (entry["trainingIterations"], entry["trainingBatchSize"], entry["trainingHRSize"]) == (
        int(_last("--steps", row.train_command)), int(batch), int(patch) * row.scale)
    assert (entry["dataset"], entry["trainingOTF"]) == (dataset, False)
    init = _last("--init", row.train_command)
    assert entry.get("pretrainedModelG") == (model_id(f"tinysr {init}".replace(f"-x{row.scale}", ""), row.scale)
                                             if init else None)
    assert f"`{row.train_command}`" in entry["description"]


def test_pinned_training_of_three_commands(tmp_path):
    """An experiment row then polish, a row resumed to more steps, and a fine-tune, each pinned."""
    fields = ("trainingIterations", "trainingBatchSize", "trainingHRSize", "dataset", "pretrainedModelG")
    entries = {n: write_entry(tmp_path, n, *PUBLISHED)[0] for n in ("tiny-1k-x4", "tiny-5k-x2", "tiny-1k-x2-jpeg-low")}
    got = {n: [entry.get(k) for k in fields] for n, entry in entries.items()}
    assert got == {"tiny-1k-x4": [42000, 16, 192, "T91+BSD200", None],
                   "tiny-5k-x2": [18000, 16, 96, "T91+BSD200", None],
                   "tiny-1k-x2-jpeg-low": [6000, 16, 96, "T91+BSD200", "2x-tinysr-tiny-1k-jpeg"]}


def test_defaults_leave_placeholders_and_say_so(tmp_path, capsys):
    entry, _ = write_entry(tmp_path, "tiny-1k-x2")
    assert (entry["license"], entry["author"], entry["date"]) == (None, "tinysr", datetime.date.today().isoformat())
    assert entry["resources"][0]["urls"] == ["REPLACE-ME: the download URL of tiny-1k-x2.safetensors"]
    assert (entry["architecture"], entry["size"], entry["tags"]) == ("tinysr-tiny", ["6nf", "4nc"],
                                                                     ["general-upscaler", "photo"])
    assert (entry["name"], entry["inputChannels"], entry["outputChannels"]) == ("tinysr tiny-1k", 3, 3)
    assert problems(entry) == ["license"]
    warnings = capsys.readouterr().err.splitlines()
    assert [w.split(":")[2].split()[0] for w in warnings] == ["architecture", "tiny-1k-x2.safetensors", "no", "author"]
    assert all(w.startswith("tinysr: warning: ") for w in warnings)
    assert "only compact models load in chaiNNer" in warnings[0]


def test_printed_without_output_and_options(tmp_path, capsys):
    assert main(["models", "--openmodeldb", "edsr-tiny-x2", "--author", "joe", "--author", "ann-b", "--tag", "anime",
                 "--tag", "denoise", "--name", "Tiny EDSR", "--date", "2024-02-29", *PUBLISHED[:4]]) == 0
    entry = json.loads(capsys.readouterr().out)
    assert (entry["name"], entry["author"], entry["date"], entry["architecture"], entry["size"]) == (
        "Tiny EDSR", ["joe", "ann-b"], "2024-02-29", "tinysr-edsr", ["4nf", "0nb"])
    assert entry["tags"] == ["anime", "denoise", "general-upscaler", "photo", "restoration"]  # denoise implies one


def test_a_run_folder_and_another_resource(tmp_path):
    """A run folder's best weights take their training from its config.json; --resource adds a file."""
    from tinysr.train.config import DataConfig, RunConfig, TrainConfig

    run = tmp_path / "my-x2"
    run.mkdir()
    shutil.copy(PRETRAINED_DIR / ROWS["tiny-1k-x2"].file, run / "best.safetensors")
    config = RunConfig(model={}, train=TrainConfig(steps=1234, batch_size=8, patch=32), protocol="standard", seed=0,
                       data=DataConfig(train=("/data/T91", "/data/Flowers"), val=None, val_split=2, scale=2,
                                       degradation="bicubic+webp70"), init="tiny-1k-x2")
    (run / "config.json").write_text(json.dumps(config.to_dict()))
    onnx = tmp_path / "my.onnx"
    onnx.write_bytes(b"\x08\x07onnx")
    entry, _ = write_entry(tmp_path, str(run), *PUBLISHED, "--resource", str(onnx), "https://a", "https://b")
    assert problems(entry) == []
    assert [entry[k] for k in ("name", "trainingIterations", "trainingBatchSize", "trainingHRSize", "dataset",
                               "pretrainedModelG", "tags")] == [
        "tinysr my", 1234, 8, 64, "T91+Flowers", "2x-tinysr-tiny-1k", ["compression-removal", "general-upscaler",
                                                                       "restoration"]]
    assert entry["resources"][1] == {"platform": "onnx", "type": "onnx", "size": 6,
                                     "sha256": hashlib.sha256(b"\x08\x07onnx").hexdigest(),
                                     "urls": ["https://a", "https://b"]}


def test_a_weights_file_elsewhere_has_no_training_fields(tmp_path, capsys):
    weights = tmp_path / "mine.safetensors"
    shutil.copy(PRETRAINED_DIR / ROWS["tiny-1k-x4"].file, weights)
    entry, _ = write_entry(tmp_path, str(weights), *PUBLISHED)
    assert problems(entry, training=False) == [] and "trainingIterations" not in entry
    assert (entry["name"], entry["scale"]) == ("tinysr mine", 4)
    assert "no training fields" in capsys.readouterr().err


@dataclasses.dataclass(frozen=True)
class CompactLike:
    """A stand-in for the compact family's config (tinysr.families.compact): its fields and spandrel's num_conv."""

    scale: int = 4
    n_feats: int = 16
    n_layers: int = 10
    family: ClassVar[str] = "compact"

    @property
    def num_conv(self) -> int:
        return self.n_layers - 2


def test_a_compact_net_is_openmodeldbs_compact():
    weights = PRETRAINED_DIR / ROWS["tiny-1k-x4"].file
    entry = model_entry(name="tinysr compact", spec="compact-x4", config=CompactLike(), params=1234,
                        files=[(weights, ["https://a"])], publication=Publication(authors=("joe",), license="MIT"))
    assert problems(entry.fields, training=False) == []
    assert (entry.id, entry.fields["architecture"], entry.fields["size"]) == ("4x-tinysr-compact", "compact",
                                                                            ["16nf", "8nc"])
    assert entry.notes == ("no training fields: the weights are neither a bundled model nor a run folder's best "
                           "weights",)
    assert "cannot load" not in entry.fields["description"]


@pytest.mark.parametrize(("name", "scale", "expected"), [
    ("tinysr tiny-1k", 2, "2x-tinysr-tiny-1k"), ("2x Foo_bar  x2", 2, "2x-Foo-bar"), ("  é-Net! ", 4, "4x-Net")])
def test_model_id_is_openmodeldbs_canonical_id(name, scale, expected):
    assert model_id(name, scale) == expected


def test_a_bad_recorded_command_is_one_line():
    row = dataclasses.replace(ROWS["tiny-1k-x2-jpeg"], train_command="tinysr train --steps nine --out x")
    with pytest.raises(TinySRError, match=r"^bundled model 'tiny-1k-x2-jpeg': its training command does not parse "
                                          r"\(.*argument --steps: expected an integer, got 'nine'\)$"):
        recorded_training(row, ROWS)
    resumed = dataclasses.replace(row, train_command="tinysr train --resume runs/x --steps 9")
    with pytest.raises(TinySRError, match="resumes a run that no earlier part of it started"):
        recorded_training(resumed, ROWS)
    assert recorded_training(dataclasses.replace(row, train_command="cp a b"), ROWS) is None


BAD = [
    (["--openmodeldb", "nosuch"], "unknown model 'nosuch': give a weights file"),
    (["--openmodeldb", "tiny-1k-x2", "--date", "2025-02-30"], "--date '2025-02-30': not a date written yyyy-mm-dd"),
    (["--openmodeldb", "tiny-1k-x2", "--tag", "fast"], "--tag 'fast': not an OpenModelDB tag; known: ai-generated"),
    (["--openmodeldb", "tiny-1k-x2", "--author", "Joe"], "--author 'Joe': an OpenModelDB user id is lower-case"),
    (["--openmodeldb", "tiny-1k-x2", "--license", "MIT/2"], "--license 'MIT/2': not an SPDX licence id"),
    (["--openmodeldb", "tiny-1k-x2", "-o", "entry.txt"], "-o entry.txt: an OpenModelDB entry is a .json file"),
    (["--openmodeldb", "tiny-1k-x2", "-o", "old.json"], "old.json: already exists; pass --force to replace it"),
    (["--openmodeldb", "tiny-1k-x2", "--resource", "old.json"], "old.json: OpenModelDB's resources are .safetensors"),
    (["--openmodeldb", "tiny-1k-x2", "--resource", "gone.onnx"], "gone.onnx: no such file"),
    (["--openmodeldb", "bad.safetensors"], "bad.safetensors: not a readable safetensors file"),
    (["--url", "https://a"], "--url belongs to an OpenModelDB entry: give --openmodeldb MODEL"),
    (["--json", "--openmodeldb", "tiny-1k-x2"], "--json lists the table; --openmodeldb writes one entry"),
]


@pytest.mark.parametrize(("argv", "start"), BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, monkeypatch, capsys, argv, start):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "old.json").write_text("{}")
    (tmp_path / "bad.safetensors").write_bytes(b"\x00" * 100)
    writes = "--openmodeldb" in argv and "-o" not in argv  # else an -o here would be the first mistake
    assert main(["models", *argv, *(["-o", "new.json"] if writes else [])]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"tinysr: error: {start}"), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.safetensors", "old.json"]
    assert (tmp_path / "old.json").read_text() == "{}"
