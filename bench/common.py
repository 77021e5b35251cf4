"""What the benchmark scripts share: progress on stderr, where the AKG is, and how results come out."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


class BenchError(Exception):
    """A benchmark's own check failed: its figures must not be used."""


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def default_akg_dir() -> Path:
    """$AKG_DATASET_DIR, else ../shared/AKG_dataset beside the repository, else /work/shared/AKG_dataset,
    else AKG_dataset/ in the repository (where `akg dataset fetch` puts it)."""
    env = os.environ.get("AKG_DATASET_DIR")
    if env:
        return Path(env)
    for candidate in (REPO.parent / "shared" / "AKG_dataset", Path("/work/shared/AKG_dataset")):
        if candidate.is_dir():
            return candidate
    return REPO / "AKG_dataset"


def emit(result: dict, *, as_json: bool, json_out: Path | None, table: Callable[[dict], str]) -> None:
    """Write the figures to --json-out when asked, and print them as JSON (--json) or as the table."""
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2) if as_json else table(result))


def run(main: Callable[[], int], name: str) -> None:
    """Exit with main's status; a failed check is one line on stderr and status 1, not a traceback."""
    try:
        sys.exit(main())
    except BenchError as e:
        print(f"{name}: FAILED: {e}", file=sys.stderr)
        sys.exit(1)


def train_watched(config, factory, after_epoch: Callable[[int, float, object, float], bool]) -> None:
    """Train `config` on `factory`, calling after_epoch(epoch, loss, model, training seconds so far)
    after each epoch; the seconds leave out the time after_epoch itself takes (evaluations), and
    training stops early when it returns True. The model is put back in training mode after it."""
    import time

    from kge.train import train

    state = {"train": 0.0, "mark": time.perf_counter()}

    class Stop(Exception):
        pass

    def on_epoch(epoch, loss, model):
        state["train"] += time.perf_counter() - state["mark"]
        stop = after_epoch(epoch, loss, model, state["train"])
        model.train()
        if stop:
            raise Stop
        state["mark"] = time.perf_counter()

    try:
        train(config, factory, on_epoch=on_epoch)
    except Stop:
        pass
