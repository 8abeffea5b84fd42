"""Maintainer tool: print the README's bundled-models table from `src/tinysr/pretrained/models.json`."""

from tinysr.pretrained import read_table

SETS = ("Set5", "Set14", "BSD100", "Urban100")


def main() -> None:
    print("| model | scale | parameters | bytes | " + " | ".join(f"{s} (bicubic)" for s in SETS) + " | training command | wall |")
    print("|---|---|---|---|" + "---|" * len(SETS) + "---|---|")
    for row in read_table():
        cells = [f"{row.psnr[s]:.2f} ({row.psnr['bicubic ' + s]:.2f})" for s in SETS]
        print(f"| `{row.name}` | x{row.scale} | {row.params:,} | {row.bytes:,} | " + " | ".join(cells)
              + f" | `{row.train_command}` | {_wall(row.train_wall_s)} |")


def _wall(seconds: float | None) -> str:
    """The training's wall time as the table shows it; a dash where the row has none recorded."""
    return "—" if seconds is None else f"{seconds / 60:.0f} min"


if __name__ == "__main__":
    main()
