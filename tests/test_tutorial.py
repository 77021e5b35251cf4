"""docs/tutorial.ipynb runs top to bottom, as written, against the session's real server: a kernel
executes every cell (nbclient) with the parameters cell set to the local copy of the AKG, two epochs
and the small real CLAP model of the tests. A cell that raises fails this test with its traceback."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


sys.path.insert(0, str(Path(__file__).parent))
from tiny_clap import build_tiny_clap  # noqa: E402

NOTEBOOK = Path(__file__).resolve().parents[1] / "docs" / "tutorial.ipynb"


def test_tutorial_runs_top_to_bottom(empty_graph, shared_dir, server_env, tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOK, as_version=4)
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1, "the tutorial needs one cell tagged `parameters`"
    clap = build_tiny_clap(tmp_path / "tiny-clap")
    params[0].source = f"DATA_FROM = {str(shared_dir)!r}\nCLAP_DIR = {str(clap)!r}\nEPOCHS = 2"
    monkeypatch.setenv("AKG_DATA_DIR", str(tmp_path / "data"))  # the kernel inherits the session's settings
    models = server_env.home / "models"
    before = set(models.iterdir()) if models.is_dir() else set()
    try:
        NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    finally:
        for made in (set(models.iterdir()) if models.is_dir() else set()) - before:  # the tutorial's model
            shutil.rmtree(made, ignore_errors=True)
    # One cell's printed text is split over several stream outputs wherever the kernel flushed between two
    # writes (a busy machine: `print(3, "clips")` arrives as "3" then " clips"), so each cell's stdout (and stderr) is joined as is.
    outputs = "\n".join("".join(o.get("text", "") for o in c.get("outputs", []) if o.get("name") == stream)
                        for c in nb.cells if c.cell_type == "code" for stream in ("stdout", "stderr"))
    assert "triples created" in outputs and "reverted:" in outputs
    assert (tmp_path / "tutorial-clip.wav").is_file()  # the audio step ran (a CLAP model was given)
    assert (tmp_path / "data" / "label_sets" / "salt_event_mapping.tsv").is_file()
    assert "no CLAP model given" not in outputs
    assert "3 clips indexed" in outputs and (tmp_path / "tutorial-retrieval-eval" / "report.md").is_file()
    html = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "display_data"]
    assert html, "the classification table was displayed"
