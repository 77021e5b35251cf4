"""docs/api.md's reference equals what the code says (signatures and docstrings of akg.api), and
the API names it documents are the ones `akg` exports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_api_reference_is_current():
    run = subprocess.run([sys.executable, "-m", "cogapp", "--check", "-I", str(REPO / "docs"), str(REPO / "docs" / "api.md")],
                         capture_output=True, text=True, cwd=REPO)
    assert run.returncode == 0, f"docs/api.md differs from the code: run `make docs`\n{run.stdout}{run.stderr}"


def test_every_documented_function_is_exported():
    import akg

    sys.path.insert(0, str(REPO / "docs"))
    import api_reference

    text = (REPO / "docs" / "api.md").read_text()
    for name in api_reference.FUNCTIONS:
        assert callable(getattr(akg, name)) and f"#### `akg.{name}`" in text
    for name in ("open", "train", "load_model", "classify", "zeroshot_eval"):  # the notebook names
        assert name in akg.__all__
