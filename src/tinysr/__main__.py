"""`python -m tinysr` (and `torchrun -m tinysr`) entry point."""

from tinysr.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
