"""The run folder's file names, defined here only (a torch-free leaf, so that the engine can find a run's weights):
`tinysr.train.runs` holds the contract that writes them, and every other module imports these names."""

CONFIG, METRICS, STATUS, LAST = "config.json", "metrics.jsonl", "status.json", "last.pt"
RUN_BEST = "best.safetensors"  # the best weights, which `--model RUN` loads
INTEGRITY = "sha256"  # last.pt's digest of the rest of its state (`tinysr.integrity`), checked on resume
RUN_FILES = (CONFIG, METRICS, STATUS, LAST, RUN_BEST)
