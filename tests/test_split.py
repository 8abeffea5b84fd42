"""Validation split: held-out training images, deterministic by seed, never trained on, recorded and kept on resume."""

import json

import numpy as np
import pytest
from PIL import Image

from tinysr.cli import main
from tinysr.data.cache import load_pairs
from tinysr.data.folder import image_folder
from tinysr.data.split import held_out_indices, split_pairs
from tinysr.errors import TinySRError
from tinysr.train.config import RunConfig
from tinysr.train.start import load_data

NAMES = [f"img{i}" for i in (5, 3, 9, 1, 7, 0, 2, 8, 4, 6)]


pytestmark = pytest.mark.usefixtures("one_thread")


def test_held_out_indices_are_pinned_and_independent_of_folder_order():
    assert held_out_indices(NAMES, 3, seed=0) == [0, 2, 9]  # img5, img9, img6
    assert held_out_indices(sorted(NAMES), 3, seed=0) == [5, 6, 9]  # the same names: the draw is over sorted names
    assert held_out_indices(NAMES, 3, seed=1) == [1, 4, 8]  # img3, img7, img4
    assert held_out_indices(NAMES, 3, seed=0) == held_out_indices(list(NAMES), 3, seed=0)


@pytest.mark.parametrize("n_val", [0, 10, 11])
def test_impossible_split_is_one_line(n_val):
    with pytest.raises(TinySRError) as err:
        held_out_indices(NAMES, n_val, seed=0)
    assert "\n" not in str(err.value) and "--val-split" in str(err.value)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Two training folders (3 + 4 images, distinct pixels per image) and nothing else."""
    root = tmp_path_factory.mktemp("split")
    rng = np.random.default_rng(0)
    for folder, count in (("a", 3), ("b", 4)):
        (root / folder).mkdir()
        for i in range(count):
            Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(root / folder / f"{folder}{i}.png")
    return root


def test_split_pairs_partitions_the_cached_set(folders, tmp_path):
    pairs = load_pairs(image_folder(folders / "b"), scale=2, cache_dir=tmp_path, progress=False)
    train, val = split_pairs(pairs, 2, seed=0)
    assert val.names == tuple(pairs.names[i] for i in held_out_indices(pairs.names, 2, seed=0))
    assert sorted(train.names + val.names) == sorted(pairs.names) and not set(train.names) & set(val.names)
    for part in (train, val):  # the same memory-mapped views, aligned
        for name, hr, lr in zip(part.names, part.hr, part.lr):
            i = pairs.names.index(name)
            assert hr is pairs.hr[i] and lr is pairs.lr[i]


def _argv(folders, run, *extra):
    return ["train", "--model", "edsr-tiny", "--train-data", str(folders / "a"), str(folders / "b"),
            "--val-split", "2", "--out", str(run), "--steps", "4", "--eval-every", "2", "--patch", "8",
            "--batch-size", "2", "--threads", "1", "--no-progress", *extra]


def test_train_with_val_split_records_and_keeps_it(folders, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TINYSR_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "run"
    assert main(_argv(folders, run)) == 0
    config = json.loads((run / "config.json").read_text())
    all_names = sorted(f"{f}{i}" for f, n in (("a", 3), ("b", 4)) for i in range(n))
    expected = [all_names[i] for i in held_out_indices(all_names, 2, seed=0)]
    assert config["data"]["val"] is None and config["data"]["val_split"] == 2
    assert config["data"]["val_names"] == expected == ["b1", "b2"]

    train_pairs, val_pairs = load_data(RunConfig.from_dict(config, source="config.json"), progress=False)[:2]
    assert train_pairs.cache_hit  # split after the cached load, by index: the whole set's entry is reused
    assert list(val_pairs.names) == expected and not set(train_pairs.names) & set(expected)
    held_pixels = {np.asarray(hr).tobytes() for hr in val_pairs.hr}
    assert not any(np.asarray(hr).tobytes() in held_pixels for hr in train_pairs.hr)

    assert main(["train", "--resume", str(run), "--steps", "6", "--threads", "1", "--no-progress"]) == 0
    assert json.loads((run / "config.json").read_text())["data"] == config["data"]  # the resume kept the split
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--val-split", "3", "--steps", "8", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"tinysr: error: {run}: its config.json disagrees with the given options: data.val_names")


def test_val_split_and_val_data_are_exclusive_and_one_is_required(folders, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(_argv(folders, tmp_path / "r", "--val-data", str(folders / "a")))
    assert exit_.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err
    argv = _argv(folders, tmp_path / "r")
    i = argv.index("--val-split")
    assert main(argv[:i] + argv[i + 2:]) == 2
    assert capsys.readouterr().err.strip() == (
        "tinysr: error: a new run needs --val-data or --val-split (or --resume RUN)")
    assert main(_argv(folders, tmp_path / "r", "--val-split", "7")) == 2
    assert "--val-split 7: the training set has only 7 images" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_split_seed_holds_out_the_same_images_under_another_training_seed(folders, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TINYSR_CACHE", str(tmp_path / "cache"))
    all_names = sorted(f"{f}{i}" for f, n in (("a", 3), ("b", 4)) for i in range(n))
    by_seed = {s: [all_names[i] for i in held_out_indices(all_names, 2, seed=s)] for s in (0, 1)}
    assert by_seed == {0: ["b1", "b2"], 1: ["a2", "b0"]}  # the two seeds draw different images

    run = tmp_path / "run"
    assert main(_argv(folders, run, "--seed", "1", "--split-seed", "0")) == 0
    config = json.loads((run / "config.json").read_text())
    assert (config["seed"], config["data"]["split_seed"], config["data"]["val_names"]) == (1, 0, by_seed[0])
    _, val_pairs = load_data(RunConfig.from_dict(config, source="config.json"), progress=False)[:2]
    assert list(val_pairs.names) == by_seed[0]
    assert main(["train", "--resume", str(run), "--steps", "6", "--threads", "1", "--no-progress"]) == 0
    assert json.loads((run / "config.json").read_text())["data"] == config["data"]  # kept on resume

    plain = tmp_path / "plain"  # without the option, the run's seed draws the split and nothing new is recorded
    assert main(_argv(folders, plain, "--seed", "1")) == 0
    data = json.loads((plain / "config.json").read_text())["data"]
    assert "split_seed" not in data and data["val_names"] == by_seed[1]

    capsys.readouterr()
    argv = _argv(folders, tmp_path / "r", "--split-seed", "0")
    i = argv.index("--val-split")
    assert main(argv[:i] + argv[i + 2:] + ["--val-data", str(folders / "a")]) == 2
    assert capsys.readouterr().err.strip() == (
        "tinysr: error: --split-seed seeds the --val-split draw; it needs --val-split")
    assert not (tmp_path / "r").exists()
