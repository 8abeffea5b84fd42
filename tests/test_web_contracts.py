"""The rules the browser page's JavaScript (src/tinysr/web/page/auto.js) shares with `tinysr.delivery.auto`: JPEG
quality estimation, the band table, and what is read from a file, the `tinysr:` record included.

`tools/web_contracts.py` writes the cases and Python's answers to `web/test/contracts.json`; the node tests
(`web/test/*.test.mjs`, `npm test` in web/) check that auto.js answers alike. Here: the fixture is what Python answers
today (a change of rule in Python needs `python tools/web_contracts.py --write`), and the node tests pass on it,
and fail on an altered answer. Node.js >= 20.19 runs auto.js as an ES module without a package.json "type".
"""

import importlib.util
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NODE_TESTS = ROOT / "web" / "test"
MIN_NODE = (20, 19)


def _load_tool():
    spec = importlib.util.spec_from_file_location("web_contracts", ROOT / "tools" / "web_contracts.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tool():
    return _load_tool()


@pytest.fixture(scope="module")
def node() -> str:
    path = shutil.which("node")
    assert path, f"the page's unit tests need Node.js >= {'.'.join(map(str, MIN_NODE))} on PATH"
    version = subprocess.run([path, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    assert tuple(int(n) for n in version.lstrip("v").split(".")[:2]) >= MIN_NODE, f"node {version} is too old"
    return path


def _run_node_tests(node: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([node, "--test", str(NODE_TESTS.relative_to(ROOT))], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env={**os.environ, **(env or {})})


def _count(output: str, what: str) -> int:
    match = re.search(rf"^# {what} (\d+)$", output, re.MULTILINE)
    assert match, output[-3000:]
    return int(match.group(1))


def test_fixture_is_what_python_answers_today(tool):
    stored = tool.read_fixture()
    assert stored, f"{tool.FIXTURE} is missing: run python tools/web_contracts.py --write"
    assert tool.differences(stored) == [], "Python's answers changed: run python tools/web_contracts.py --write"


def test_fixture_covers_every_quality_family_catalog_scale_and_file(tool):
    stored = tool.read_fixture()
    assert [t["quality"] for t in stored["quality"]["tables"]] == list(range(1, 101))
    assert {(c["family"], c["catalog"], c["scale"]) for c in stored["choices"]} == {
        (f, c, s) for f in ("auto", "auto-5k") for c in ("bundled", "no-band-nets") for s in tool.SCALES}
    assert [f["name"] for f in stored["files"]] == list(tool.FILES)
    # the cases mean something: the bands split the JPEG qualities, and records are both taken and refused
    x2 = next(c for c in stored["choices"] if (c["family"], c["catalog"], c["scale"]) == ("auto", "bundled", 2))
    assert [model for _, _, model in x2["jpeg"]] == ["tiny-1k-x2-jpeg-low", "tiny-1k-x2-jpeg",
                                                     "tiny-1k-x2-jpeg-high", "tiny-1k-x2"]
    records = [f["python"]["record"] for f in stored["files"] if f["name"].startswith("record-")]
    assert any(r is None for r in records) and any(r is not None for r in records)
    assert any(f["python"]["ignored"] for f in stored["files"])
    assert any(check["ignored"] for f in stored["files"] for check in f["decoded"])
    decoded = [check["record"] for f in stored["files"] for check in f["decoded"]]
    assert any(r is None for r in decoded) and any(r is not None for r in decoded)


def test_node_tests_pass_on_the_fixture(node, tool):
    result = _run_node_tests(node)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    stored = tool.read_fixture()
    every_case = 4 + len(stored["choices"]) + len(stored["files"])  # the 4 quality tests, one per choice and file
    assert _count(output, "fail") == 0 and _count(output, "pass") == every_case


def test_node_tests_fail_on_an_answer_python_did_not_give(node, tool, tmp_path):
    altered = tool.read_fixture()
    entry = next(f for f in altered["files"] if f["name"] == "q75.jpg")
    entry["python"]["quality"] = 76
    (tmp_path / "contracts.json").write_text(json.dumps(altered))
    result = _run_node_tests(node, {"TINYSR_CONTRACTS": str(tmp_path / "contracts.json")})
    output = result.stdout + result.stderr
    assert result.returncode != 0 and _count(output, "fail") == 1, output[-6000:]
    assert "not ok" in output and "q75.jpg" in output
