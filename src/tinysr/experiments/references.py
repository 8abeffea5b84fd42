"""Published sub-15k-parameter SR results, as data: the reference points of the tiny-pareto report.

All PSNRs are the papers' own, under the standard protocol (Y channel of MATLAB `rgb2ycbcr`, `scale` pixels of
border cropped, MATLAB bicubic degradation), on Set5 / Set14 / BSD100 / Urban100 HR images. Only what the sources
print is stored: a missing test set is absent, never guessed. Parameter counts are the papers' (SESR-M5 is "about
13.5k"). The papers do not agree on how MACs are counted, so no MACs are stored: the MACs plot places a reference at
an ESTIMATE, its parameter count times the LR pixels of the output (exact for a net whose convs all run at LR
resolution without biases; a transposed conv, as in FSRCNN, is counted per input pixel).
"""

from __future__ import annotations

from dataclasses import dataclass, field

TEST_SETS = ("Set5", "Set14", "BSD100", "Urban100")
#: Folder names that mean one of `TEST_SETS` (compared case-insensitively).
ALIASES = {"set5": "Set5", "set14": "Set14", "bsd100": "BSD100", "b100": "BSD100", "urban100": "Urban100"}


@dataclass(frozen=True)
class Published:
    """One published model at one scale: its parameters and its mean PSNR (dB) per test set."""

    name: str
    scale: int
    params: int
    psnr: dict[str, float] = field(default_factory=dict)
    approx_params: bool = False  # the paper gives the count as "about"


def _sets(*values: float) -> dict[str, float]:
    return dict(zip(TEST_SETS, values))


REFERENCES: tuple[Published, ...] = (
    Published("eSR-MAX", 2, 200, _sets(34.70, 31.02, 30.28, 27.59)),
    Published("eSR-CNN C2D1S3", 2, 488, _sets(35.60, 31.72, 30.76, 28.33)),
    Published("eSR-CNN C2D9S3", 2, 912, _sets(36.28, 32.19, 31.08, 28.87)),
    Published("ESPCN", 2, 3_424, _sets(36.67, 32.43, 31.33, 29.37)),
    Published("FSRCNN", 2, 12_000, _sets(37.00, 32.63, 31.53, 29.88)),
    Published("SESR-M5", 2, 13_500, {"Set14": 32.84}, approx_params=True),
    Published("FSRCNN D6S3M1", 4, 776, {"Set5": 29.49}),
)

#: Published MATLAB-bicubic PSNRs under the same protocol, per scale.
PUBLISHED_BICUBIC: dict[int, dict[str, float]] = {
    2: _sets(33.66, 30.24, 29.56, 26.88),
    4: {"Set5": 28.42},
}


def canonical_test_set(folder_name: str) -> str | None:
    """The `TEST_SETS` name a test folder stands for ("Set5", "B100" -> "BSD100"), or None for another folder."""
    return ALIASES.get(folder_name.lower())


def references_for(scale: int, test_set: str | None) -> list[Published]:
    """The published models at `scale` with a PSNR on `test_set` (a `TEST_SETS` name)."""
    return [r for r in REFERENCES if r.scale == scale and test_set in r.psnr]


def estimated_macs(ref: Published, out_h: int = 720, out_w: int = 1280) -> int:
    """The MACs estimate of the module docstring: parameters x LR pixels of an out_h x out_w output."""
    return ref.params * out_h * out_w // (ref.scale * ref.scale)
