"""tinysr.cli.types: the argparse converters accept the bound, refuse below it, and say why on one line."""

import argparse
import math

import pytest

from tinysr.cli.types import int_at_least, positive_float, positive_int


def test_int_at_least_accepts_the_bound_and_names_it():
    assert int_at_least(0)("0") == 0 and positive_int("1") == 1 and positive_int("300000") == 300000
    with pytest.raises(argparse.ArgumentTypeError, match=r"^must be >= 1, got 0$"):
        positive_int("0")
    with pytest.raises(argparse.ArgumentTypeError, match=r"^must be >= 0, got -3$"):
        int_at_least(0)("-3")
    with pytest.raises(argparse.ArgumentTypeError, match=r"^expected an integer, got '1.5'$"):
        positive_int("1.5")


def test_positive_float_refuses_zero_negative_and_nan():
    assert positive_float("1e-4") == 1e-4 and math.isinf(positive_float("inf"))
    for text, value in (("0", "0.0"), ("-1", "-1.0"), ("nan", "nan")):
        with pytest.raises(argparse.ArgumentTypeError, match=rf"^must be > 0, got {value}$"):
            positive_float(text)
    with pytest.raises(argparse.ArgumentTypeError, match=r"^expected a number, got 'x'$"):
        positive_float("x")


def test_experiment_run_refuses_zero_steps_on_one_line(capsys):
    from tinysr.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["experiment", "run", "table2", "--steps", "0", "--dry-run"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith("argument --steps: must be >= 1, got 0")
