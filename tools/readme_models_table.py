"""Maintainer tool: print the README's bundled-models table from `src/tinysr/pretrained/models.json`."""

from tinysr.pretrained import read_table

SETS = ("Set5", "Set14", "BSD100", "Urban100")


def main() -> None:
    print("| model | scale | parameters | bytes | " + " | ".join(f"{s} (bicubic)" for s in SETS) + " | training command |")
    print("|---|---|---|---|" + "---|" * len(SETS) + "---|")
    for row in read_table():
        cells = [f"{row.psnr[s]:.2f} ({row.psnr['bicubic ' + s]:.2f})" for s in SETS]
        print(f"| `{row.name}` | x{row.scale} | {row.params:,} | {row.bytes:,} | " + " | ".join(cells)
              + f" | `{row.train_command}` |")


if __name__ == "__main__":
    main()
