"""The Python API reference of docs/api.md, generated from the code (signatures and docstrings).

`make docs` regenerates docs/api.md's marked block with cog; tests/test_docs.py fails when the page
and the code differ. Run `python docs/api_reference.py` to print the block.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

FUNCTIONS = ("open", "fetch_dataset", "data_dir", "train", "load_model", "models", "import_embeddings", "classify",
             "zeroshot_eval", "index", "search", "tag", "retrieval_eval")
CLASSES = ("KnowledgeGraph", "Curation", "Model", "Table", "Report", "Evaluation", "IngestReport", "ClassifyReport")


def _signature(name: str, obj) -> str:
    sig = str(inspect.signature(obj)).replace("'", "")
    return f"{name}{sig}"


def _doc(obj) -> str:
    return inspect.cleandoc(obj.__doc__ or "(no description)")


def markdown() -> str:
    from akg import api

    out = ["### Functions", ""]
    for name in FUNCTIONS:
        fn = getattr(api, name)
        out += [f"#### `akg.{name}`", "", "```python", _signature(f"akg.{name}", fn), "```", "", _doc(fn), ""]
    out += ["### Classes", ""]
    for name in CLASSES:
        cls = getattr(api, name)
        out += [f"#### `{name}`", "", _doc(cls), ""]
        for attr, member in sorted(vars(cls).items()):
            if attr.startswith("_") or not callable(member):
                continue
            out += ["```python", _signature(f"{name}.{attr}", member).replace("(self, ", "(").replace("(self)", "()"),
                    "```", "", _doc(member), ""]
    return "\n".join(out).rstrip() + "\n"


if __name__ == "__main__":
    sys.stdout.write(markdown())
