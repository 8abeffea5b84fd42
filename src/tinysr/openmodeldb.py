"""A tinysr model as an OpenModelDB entry: the JSON file that OpenModelDB's contributing guide asks for.

OpenModelDB (github.com/OpenModelDB/open-model-database) keeps one file per model, `data/models/<id>.json`, and
chaiNNer, ComfyUI and the other apps link to it. Everything below follows that repository at commit `SOURCE_COMMIT`:
- docs/contributing/models.md: what a model is (one checkpoint; every scale its own model), its ID (the scale, then
  letters, digits and hyphens), and what an entry must have (author, date, description, license, tags,
  architecture, colour mode), each resource with its URL, size, SHA-256 and platform;
- src/lib/schema.ts (`Model`, `Resource`) and src/lib/model-props.ts (`MODEL_PROPS`): field names and types;
- src/lib/server/file-data.ts: the key order (`modelKeyOrder`) and the file's format (`JSON.stringify(model,
  undefined, 4)`: four spaces, no newline at the end; `npm run validate-db` compares a file with exactly that);
- data/tags.json, data/architectures.json, src/lib/license.ts: the tag, architecture and licence ids it knows.

How tinysr fills the entry:
- architecture: OpenModelDB's id where the apps load the family (`compact`, spandrel's Compact), else tinysr's own
  name (`tinysr-tiny`, `tinysr-edsr`: OpenModelDB's `edsr` is spandrel's EDSR, whose keys tinysr's file lacks);
- inputChannels / outputChannels: the image's, RGB in and out (a Y-only net takes RGB; its Cb and Cr are bicubic);
- trainingIterations: the optimizer steps of the training command; trainingHRSize: its LR patch times the scale
  (OpenModelDB's is the HR crop); trainingOTF false (tinysr degrades every image once, before training);
- resources: the weights file, and any other file given (an ONNX export, say), each with its size and SHA-256.
What cannot be known here (a download URL, a licence, an OpenModelDB user id) comes from the caller, and each gap
is returned as a note for the user to act on.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tinysr.errors import TinySRError, one_line

SOURCE = "https://github.com/OpenModelDB/open-model-database"
SOURCE_COMMIT = "782aac088bd83dd3fc438a42eb0c3868dc559110"

#: src/lib/server/file-data.ts `modelKeyOrder` and the order of a resource's keys.
KEY_ORDER = ("name", "author", "license", "tags", "description", "date", "architecture", "size", "scale",
             "inputChannels", "outputChannels", "resources", "trainingIterations", "trainingEpochs",
             "trainingBatchSize", "trainingHRSize", "trainingOTF", "dataset", "datasetSize", "pretrainedModelG",
             "pretrainedModelD", "images", "thumbnail")
RESOURCE_KEY_ORDER = ("platform", "type", "size", "sha256", "urls")
#: file suffix -> (resource type, platform); schema.ts: PthFile, SafetensorsFile, OnnxFile (a .pt is a .pth)
RESOURCE_TYPES = {".safetensors": ("safetensors", "pytorch"), ".pth": ("pth", "pytorch"),
                  ".pt": ("pth", "pytorch"), ".onnx": ("onnx", "onnx")}
#: data/tags.json: the tags a model lists (the others, "scale:2" and so on, OpenModelDB derives), and what each implies
TAGS = ("ai-generated", "anime", "anti-aliasing", "cartoon", "cgi", "colorization", "compression-removal", "dds",
        "debanding", "deblur", "dedither", "dehalftone", "dehalo", "denoise", "faces", "game-screenshots",
        "game-textures", "general-upscaler", "inpainting", "jpeg", "manga", "photo", "pixel-art", "pretrained",
        "research", "restoration", "text", "texture-generation", "video-frame")
IMPLIED_TAGS = {"compression-removal": ("restoration",), "dds": ("compression-removal", "restoration"),
                "debanding": ("restoration",), "deblur": ("restoration",), "dedither": ("restoration",),
                "dehalftone": ("restoration",), "dehalo": ("restoration",), "denoise": ("restoration",),
                "jpeg": ("compression-removal", "restoration")}
#: data/architectures.json: the architectures OpenModelDB (and so the apps) know
APP_ARCHITECTURES = ("atd", "cain", "cain-yuv", "compact", "craft", "cugan", "dat", "dctlsa", "ditn", "drct", "edsr",
                     "esrgan", "esrgan+", "grl", "hat", "hma", "ludvae", "mosr", "omnisr", "rcan", "real-cugan",
                     "realplksr", "realplksr-dysample", "rgt", "rife", "sofvsr", "span", "spsr", "sr-res-net",
                     "srformer", "swift-srgan", "swinir", "tscunet")
#: src/lib/license.ts `KNOWN_LICENSES` (another SPDX id is accepted there, tagged license:unknown)
KNOWN_LICENSES = ("Apache-2.0", "Academic-Research-Only", "BSD-3-Clause", "CC0-1.0", "CC-BY-4.0", "CC-BY-SA-4.0",
                  "CC-BY-NC-4.0", "CC-BY-NC-SA-4.0", "GPL-3.0-only", "MIT", "Unlicense", "WTFPL")
#: src/lib/schema-util.ts and src/lib/util.ts: the id and date patterns; license.ts `parseLicense`'s SPDX id
MODEL_ID_PATTERN = re.compile(r"\d+x-[a-zA-Z0-9]+(?:-[a-zA-Z0-9]+)*")
USER_ID_PATTERN = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
DATE_PATTERN = re.compile(r"\d{4}-(?:0[1-9]|1[012])-(?:0[1-9]|[12][0-9]|3[01])")
LICENSE_ID_PATTERN = re.compile(r"[a-zA-Z0-9.\-]+")

#: tinysr family -> its architecture id (see the module docstring); another family gets "tinysr-<family>"
ARCHITECTURES = {"compact": "compact", "tiny": "tinysr-tiny", "edsr": "tinysr-edsr"}
#: tinysr's training sets of photographs (the "photo" tag: OpenModelDB's "Realistic")
PHOTO_DATASETS = ("T91", "BSD200", "DIV2K", "DIV2K_train_HR", "CINIC-10")
#: the author when none is given: the project, which must then be a user in OpenModelDB's data/users.json
DEFAULT_AUTHOR = "tinysr"
#: where a URL is missing; a note says to replace it (OpenModelDB's check takes any string but a Discord link)
URL_PLACEHOLDER = "REPLACE-ME: the download URL of {file}"


@dataclass(frozen=True)
class Training:
    """How a model was trained, as its training command or run folder states it.

    iterations, batch_size, patch: the optimizer steps, the patches per step and the LR patch side.
    datasets: the training sets' names (folder names, or the experiment table's data name).
    degradation: how LR was made from HR, a `tinysr.data.degrade` name ("bicubic+jpeg30-95").
    pretrained: the bundled model it was fine-tuned from, or None.
    command: the command that trained it (quoted in the description), or None.
    """

    iterations: int
    batch_size: int
    patch: int
    datasets: tuple[str, ...]
    degradation: str = "bicubic"
    pretrained: str | None = None
    command: str | None = None


@dataclass(frozen=True)
class Publication:
    """What the model's publisher states: author ids (OpenModelDB users), an SPDX licence or None, the release date
    (yyyy-mm-dd) and tags beyond those tinysr derives."""

    authors: tuple[str, ...] = (DEFAULT_AUTHOR,)
    license: str | None = None
    date: str = dataclasses.field(default_factory=lambda: datetime.date.today().isoformat())
    tags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        bad_author = next((a for a in self.authors if not USER_ID_PATTERN.fullmatch(a)), None)
        if not self.authors:
            raise TinySRError("an OpenModelDB entry needs an --author")
        if bad_author is not None:
            raise TinySRError(f"--author {bad_author!r}: an OpenModelDB user id is lower-case letters, digits and "
                              "single hyphens (e.g. joe-bloggs)")
        ids = re.split(r"\s+OR\s+", self.license, flags=re.IGNORECASE) if self.license is not None else []
        if self.license is not None and not all(LICENSE_ID_PATTERN.fullmatch(i) for i in ids):
            raise TinySRError(f"--license {self.license!r}: not an SPDX licence id (e.g. MIT, CC-BY-4.0), nor ids "
                              "joined by OR")
        if not DATE_PATTERN.fullmatch(self.date) or not _is_date(self.date):
            raise TinySRError(f"--date {self.date!r}: not a date written yyyy-mm-dd")
        unknown = [t for t in self.tags if t not in TAGS]
        if unknown:
            raise TinySRError(f"--tag {unknown[0]!r}: not an OpenModelDB tag; known: {', '.join(TAGS)}")


def _is_date(text: str) -> bool:
    try:
        datetime.date.fromisoformat(text)
    except ValueError:
        return False
    return True


def model_id(name: str, scale: int) -> str:
    """OpenModelDB's id for a model `name` at `scale` (schema-util.ts `canonicalizeModelId`): "2x-" and the name
    with every run of other characters as one hyphen; the entry's file is data/models/<id>.json."""
    body = re.sub(r"[^a-zA-Z0-9]+", "-", name).strip("-")
    canonical = re.sub(r"^(\d+)x-(?:\1x-?|x\1)", r"\1x-", f"{scale}x-{body}", flags=re.IGNORECASE)
    return re.sub(r"^((\d+)x.*?)-(?:x\2|\2x)$", r"\1", canonical, flags=re.IGNORECASE)  # no scale twice


def entry_name(model: str, scale: int) -> str:
    """The entry's name for a model named `model` (bundled, or a run folder's or file's name): "tinysr " and the
    name less its "-xN", since the page shows the scale (the guide: a name holds nothing the page states)."""
    return "tinysr " + re.sub(rf"-x{scale}(?=-|$)", "", model)


def architecture(family: str) -> str:
    return ARCHITECTURES.get(family, f"tinysr-{family}")


def size_labels(config: Any) -> list[str] | None:
    """The entry's `size`: width and depth as the database writes them, features "nf", then convolutions "nc" or
    residual blocks "nb"; a compact net's "nc" is spandrel's num_conv, the hidden convs (its "64nf", "16nc"
    pretrain is SRVGGNetCompact's default), a tiny net's counts every conv (tinysr's n_layers); None for another
    family."""
    if config.family == "compact":
        return [f"{config.n_feats}nf", f"{config.num_conv}nc"]
    if config.family == "tiny":
        return [f"{config.n_feats}nf", f"{config.n_layers}nc"]
    if config.family == "edsr":
        return [f"{config.n_feats}nf", f"{config.n_blocks}nb"]
    return None


def image_channels(config: Any) -> int:
    """The channels of the image the model takes and gives: RGB for a Y-only tiny net too (tinysr upscales Cb and
    Cr bicubically), else the network's."""
    return 3 if config.family == "tiny" else int(getattr(config, "n_colors", 3))


def derived_tags(training: Training | None, extra: Sequence[str]) -> list[str]:
    """The entry's tags: general-upscaler; photo for tinysr's photograph sets; jpeg for a JPEG stage in the
    training degradation, compression-removal for WebP or AVIF; `extra`; then every implied tag, sorted."""
    tags = {"general-upscaler", *extra}
    if training is not None:
        from tinysr.data.degrade import parse_degradation  # numpy and Pillow: only when there is a degradation

        codecs = {stage.codec for stage in parse_degradation(training.degradation).codecs}
        tags |= {"jpeg"} if "jpeg" in codecs else set()
        tags |= {"compression-removal"} if codecs - {"jpeg"} else set()
        tags |= {"photo"} if all(name in PHOTO_DATASETS for name in training.datasets) else set()
    for tag in list(tags):
        tags.update(IMPLIED_TAGS.get(tag, ()))
    return sorted(tags)


def resource(path: Path, urls: Sequence[str]) -> dict[str, Any]:
    """One resource: OpenModelDB's platform and type for the file's suffix, its size in bytes and SHA-256, and its
    download URLs (a placeholder when none is given)."""
    path = Path(path)
    kind = RESOURCE_TYPES.get(path.suffix.lower())
    if kind is None:
        raise TinySRError(f"{path}: OpenModelDB's resources are {', '.join(RESOURCE_TYPES)} files")
    if not path.is_file():
        raise TinySRError(f"{path}: no such file")
    data = path.read_bytes()
    if not data:
        raise TinySRError(f"{path}: an empty file")
    platform, type_ = kind[1], kind[0]
    return {"platform": platform, "type": type_, "size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
            "urls": list(urls) or [URL_PLACEHOLDER.format(file=path.name)]}


def describe_network(config: Any, params: int) -> str:
    """One sentence: the family, the parameters and the layers, in words."""
    if config.family == "tiny":
        colour = "the Y channel only (Cb and Cr are upscaled bicubically)" if config.channels == "y" else "RGB"
        anchor = f"a {config.anchor} upscale of the input added back" if config.anchor != "none" else "no anchor"
        layers = (f"{config.n_layers} convolutions of {config.n_feats} features at low resolution (the first "
                  f"{config.kernel_size}x{config.kernel_size}), a pixel shuffle and {anchor}, on {colour}")
    elif config.family == "compact":
        layers = (f"Real-ESRGAN's SRVGGNetCompact with {config.num_conv} hidden convolutions of {config.n_feats} "
                  "features and PReLU at low resolution, a pixel shuffle and a nearest upscale of the input added "
                  "back, on RGB")
    elif config.family == "edsr":
        layers = f"EDSR with {config.n_blocks} residual blocks of {config.n_feats} features, on RGB"
    else:
        layers = ", ".join(f"{f.name} {getattr(config, f.name)}" for f in dataclasses.fields(config))
    return f"A tinysr `{config.family}` net of {params:,} parameters: {layers}."


def describe_scores(psnr: Mapping[str, float], protocol: str) -> str:
    """The bundled table's PSNR per test set, each beside bicubic's ("bicubic Set5" in the table)."""
    parts = [f"{name} {value:.2f} dB" + (f" (bicubic {psnr['bicubic ' + name]:.2f})" if f"bicubic {name}" in psnr
                                         else "")
             for name, value in psnr.items() if not name.startswith("bicubic ")]
    return f"PSNR under tinysr's `{protocol}` protocol: {', '.join(parts)}."


def describe_training(training: Training) -> str:
    text = (f"Trained by tinysr on {'+'.join(training.datasets)}, the LR images made by `{training.degradation}` "
            "(tinysr's degradation names: `tinysr eval --help`)")
    text += f", fine-tuned from tinysr's `{training.pretrained}`" if training.pretrained else ""
    return text + (f": `{one_line(training.command)}`." if training.command else ".")


def description(*, spec: str, config: Any, params: int, training: Training | None,
                psnr: Mapping[str, float] | None, protocol: str | None) -> str:
    """The entry's Markdown description: the net, its scores, its training, and where it runs."""
    paragraphs = [describe_network(config, params)]
    if psnr and protocol:
        paragraphs.append(describe_scores(psnr, protocol))
    if training is not None:
        paragraphs.append(describe_training(training))
    run = f"Upscale with tinysr (`pip install tinysr`): `tinysr upscale --model {spec} IN -o OUT`."
    if architecture(config.family) not in APP_ARCHITECTURES:
        run += " chaiNNer, ComfyUI and the other apps cannot load this architecture."
    paragraphs.append(run)
    return "\n\n".join(paragraphs).strip()


def training_fields(training: Training, *, scale: int) -> dict[str, Any]:
    """The entry's training fields; a fine-tune names its start, whose entry has the same scale (tinysr fine-tunes
    a net of the same architecture), as pretrainedModelG."""
    fields = {"trainingIterations": training.iterations, "trainingBatchSize": training.batch_size,
              "trainingHRSize": training.patch * scale, "trainingOTF": False, "dataset": "+".join(training.datasets)}
    if training.pretrained is not None:
        fields["pretrainedModelG"] = model_id(entry_name(training.pretrained, scale), scale)
    return fields


@dataclass(frozen=True)
class Entry:
    """An entry (`fields`, in OpenModelDB's key order), its id, and the notes on what the user must still do."""

    id: str
    fields: dict[str, Any]
    notes: tuple[str, ...]

    def text(self) -> str:
        """The file as OpenModelDB writes it: `JSON.stringify(model, undefined, 4)`, no newline at the end."""
        return json.dumps(self.fields, indent=4, ensure_ascii=False)


def model_entry(*, name: str, spec: str, config: Any, params: int, files: Sequence[tuple[Path, Sequence[str]]],
                publication: Publication, training: Training | None = None,
                psnr: Mapping[str, float] | None = None, protocol: str | None = None) -> Entry:
    """The OpenModelDB entry of a tinysr model.

    name: the entry's name; spec: the --model value that runs it in tinysr (a bundled name or a file name);
    config, params: the deployed family config and its trainable parameters; files: (path, download URLs) per
    resource, the weights file first; training, psnr, protocol: what is known of its training and its scores.
    """
    arch, authors = architecture(config.family), list(publication.authors)
    fields: dict[str, Any] = {
        "name": name, "author": authors[0] if len(authors) == 1 else authors, "license": publication.license,
        "tags": derived_tags(training, publication.tags),
        "description": description(spec=spec, config=config, params=params, training=training, psnr=psnr,
                                   protocol=protocol),
        "date": publication.date, "architecture": arch, "size": size_labels(config), "scale": int(config.scale),
        "inputChannels": image_channels(config), "outputChannels": image_channels(config),
        "resources": [resource(path, urls) for path, urls in files], "images": [],
    }
    if training is not None:
        fields |= training_fields(training, scale=int(config.scale))
    fields = {key: fields[key] for key in KEY_ORDER if key in fields}
    return Entry(model_id(name, int(config.scale)), fields, tuple(entry_notes(fields, files, publication)))


def entry_notes(fields: Mapping[str, Any], files: Sequence[tuple[Path, Sequence[str]]],
                publication: Publication) -> list[str]:
    """What OpenModelDB will not take as it is, each with what to do."""
    notes = []
    if fields["architecture"] not in APP_ARCHITECTURES:
        notes.append(f"architecture {fields['architecture']!r} is tinysr's own: only compact models load in "
                     "chaiNNer, ComfyUI and the other apps, and OpenModelDB needs it added to data/architectures.json")
    notes += [f"{Path(path).name}: no download URL; its entry holds a placeholder to replace (or pass the URL)"
              for path, urls in files if not urls]
    if publication.license is None:
        notes.append("no --license: the license is null, and OpenModelDB's guide asks for one (e.g. --license MIT)")
    elif any(i not in KNOWN_LICENSES for i in re.split(r"\s+OR\s+", publication.license, flags=re.IGNORECASE)):
        notes.append(f"license {publication.license!r} is not one OpenModelDB describes: it will show as unknown")
    if DEFAULT_AUTHOR in publication.authors:
        notes.append(f"author {DEFAULT_AUTHOR!r} must be a user in OpenModelDB's data/users.json (add it in the same "
                     "pull request, or pass --author)")
    if "pretrainedModelG" in fields:
        notes.append(f"pretrainedModelG names {fields['pretrainedModelG']}, the entry of the model it was "
                     "fine-tuned from: submit that entry too")
    if "trainingIterations" not in fields:
        notes.append("no training fields: the weights are neither a bundled model nor a run folder's best weights")
    return notes


def training_from_run(config: Mapping[str, Any], *, source: str, bundled: Sequence[str] = ()) -> Training:
    """The training of a run folder, from its config.json (`tinysr.train.config.RunConfig`); `bundled`: the
    bundled names, of which --init may have named one."""
    from tinysr.train.config import RunConfig  # numpy, through tinysr.metrics

    run = RunConfig.from_dict(dict(config), source=source)
    return Training(iterations=run.train.steps, batch_size=run.train.batch_size, patch=run.train.patch,
                    datasets=tuple(Path(folder).name for folder in run.data.train),
                    degradation=run.data.degradation, pretrained=run.init if run.init in bundled else None)
