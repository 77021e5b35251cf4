"""Zero-shot evaluation: baseline CLAP against knowledge-refined CLAP on a labelled dataset.

Reads the metadata layouts of ESC-50 (meta/esc50.csv), UrbanSound8K (metadata/UrbanSound8K.csv,
audio in fold<N>/) and FSD50K (FSD50K.ground_truth/eval.csv or dev.csv, multi-label). Single-label
sets are scored by accuracy (top 1), multi-label ones by mAP (macro average precision over the
classes that occur). Audio embeddings are cached by file content, and each relation set's prompt
bank is cached too, so an ablation over relation sets and k costs matrix products only.
"""

from __future__ import annotations

import csv
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from akg.errors import InputError
from akg.files import write_together


@dataclass(frozen=True)
class Item:
    path: Path
    labels: tuple[str, ...]


def _norm(label: str) -> str:
    return re.sub(r"[\s_]+", " ", label.strip().lower())


def read_metadata(meta: Path, audio_dir: Path) -> tuple[str, list[Item]]:
    """(layout, items) from a metadata CSV, its layout recognised by its columns."""
    meta, audio_dir = Path(meta), Path(audio_dir)
    if not meta.is_file():
        raise InputError("no such metadata file", file=str(meta))
    with open(meta, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        columns = set(reader.fieldnames or [])
        rows = list(reader)
    if {"filename", "category"} <= columns:
        layout, items = "esc50", [Item(audio_dir / r["filename"], (r["category"],)) for r in rows]
    elif {"slice_file_name", "fold", "class"} <= columns:
        layout, items = "urbansound8k", [Item(audio_dir / f"fold{r['fold']}" / r["slice_file_name"], (r["class"],)) for r in rows]
    elif {"fname", "labels"} <= columns:
        layout, items = "fsd50k", [Item(audio_dir / f"{r['fname']}.wav", tuple(l for l in r["labels"].split(",") if l)) for r in rows]
    else:
        raise InputError(f"unrecognised metadata columns {sorted(columns)}: expected ESC-50 (filename, category), "
                         "UrbanSound8K (slice_file_name, fold, class) or FSD50K (fname, labels)", file=str(meta), line=1)
    if not items:
        raise InputError("the metadata lists no clips", file=str(meta))
    return layout, items


def label_matrix(items: list[Item], label_texts: list[str], label_names: list[str]) -> tuple[np.ndarray, list[str]]:
    """(clips x labels) 0/1 targets; the labels of the metadata matched to the label set by name."""
    index = {}
    for i, (text, name) in enumerate(zip(label_texts, label_names)):
        index.setdefault(_norm(name), i)
        index.setdefault(_norm(text), i)
    y = np.zeros((len(items), len(label_texts)), dtype=np.int8)
    unknown = set()
    for row, item in enumerate(items):
        for label in item.labels:
            col = index.get(_norm(label))
            if col is None:
                unknown.add(label)
            else:
                y[row, col] = 1
    return y, sorted(unknown)


def accuracy(scores: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Top-1 accuracy and per-class accuracy (nan where a class has no clip)."""
    hit = y[np.arange(len(y)), scores.argmax(1)] == 1
    per_class = np.array([hit[y[:, c] == 1].mean() if y[:, c].any() else np.nan for c in range(y.shape[1])])
    return float(hit.mean()), per_class


def mean_average_precision(scores: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    from sklearn.metrics import average_precision_score

    per_class = np.array([average_precision_score(y[:, c], scores[:, c]) if y[:, c].any() else np.nan
                          for c in range(y.shape[1])])
    return float(np.nanmean(per_class)), per_class


def score(scores: np.ndarray, y: np.ndarray, multi_label: bool) -> tuple[str, float, np.ndarray]:
    if multi_label:
        value, per_class = mean_average_precision(scores, y)
        return "mAP", value, per_class
    value, per_class = accuracy(scores, y)
    return "accuracy", value, per_class


def check_out_dir(out_dir: Path) -> Path:
    """Whether a report can be written to out_dir, checked before any clip is encoded and without
    creating anything: the folder, or else its nearest existing parent, must be a writable folder.
    An InputError naming out_dir if not."""
    out_dir = Path(out_dir)
    existing = out_dir
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if existing == out_dir and not out_dir.is_dir():
        raise InputError("exists and is not a folder: choose another output folder", file=str(out_dir))
    if not existing.is_dir():
        raise InputError(f"cannot create this folder: {existing} is a file", file=str(out_dir))
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"cannot write here: {existing} is not writable", file=str(out_dir))
    return out_dir


def _csv(data: list[dict]) -> str:
    buffer = io.StringIO()
    if data:
        w = csv.DictWriter(buffer, fieldnames=list(data[0]))
        w.writeheader()
        w.writerows(data)
    return buffer.getvalue()


def write_report(out_dir: Path, *, dataset: str, metric: str, rows: list[dict], per_class: list[dict], meta: dict) -> dict:
    """results.csv, per_class.csv, report.md and ablation.png in out_dir; returns their paths. Each
    file is staged beside its target and all are renamed into place at the end, so a failed run
    leaves the previous report whole rather than half of a new one."""
    out_dir = check_out_dir(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"cannot create this folder ({e.strerror or e})", file=str(out_dir)) from None
    paths = {"results": out_dir / "results.csv", "per_class": out_dir / "per_class.csv",
             "report": out_dir / "report.md", "plot": out_dir / "ablation.png"}
    contents = {"results": _csv(rows), "per_class": _csv(per_class)}
    best = max(rows, key=lambda r: r["refined"])
    lines = [f"# Zero-shot evaluation: {dataset}", "",
             f"{meta['clips']} clips ({meta['failed']} unreadable), {meta['labels']} labels "
             f"({meta['with_entity']} with an AKG entity), metric: {metric}, encoder `{meta['encoder']}`, "
             f"KGE `{meta['kge_model']}`, fusion `{meta['fusion']}`.", "",
             f"Baseline CLAP: **{rows[0]['baseline']:.4f}**. Best refined: **{best['refined']:.4f}** "
             f"(relations: {best['relations']}; k = {best['top_k']}; {best['delta']:+.4f}).", "",
             "| relations | k | baseline | refined | delta |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {r['relations']} | {r['top_k']} | {r['baseline']:.4f} | {r['refined']:.4f} | {r['delta']:+.4f} |" for r in rows]
    moved = sorted((c for c in per_class if c["delta"] == c["delta"]), key=lambda c: c["delta"])
    gains = [c for c in reversed(moved) if c["delta"] > 0][:5]
    losses = [c for c in moved if c["delta"] < 0][:5]
    if gains or losses:
        lines += ["", f"Per class ({best['relations']}, k = {best['top_k']}; chosen on these clips): largest gains and losses", "",
                  "| label | baseline | refined | delta |", "|---|---:|---:|---:|"]
        lines += [f"| {c['label']} | {c['baseline']:.4f} | {c['refined']:.4f} | {c['delta']:+.4f} |" for c in gains + losses]
    lines += ["", "![ablation](ablation.png)", ""]
    contents["report"] = "\n".join(lines)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(5, 0.5 * len(rows) + 2), 3.5), dpi=100)
    ax.bar(range(len(rows)), [r["delta"] for r in rows], color=["tab:green" if r["delta"] >= 0 else "tab:red" for r in rows])
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(rows)), [f"{r['relations'][:18]}\nk={r['top_k']}" for r in rows], fontsize=7)
    ax.set_ylabel(f"{metric}: refined - baseline")
    ax.set_title(f"{dataset}: baseline {rows[0]['baseline']:.4f}", fontsize=9)
    fig.tight_layout()
    png = io.BytesIO()
    fig.savefig(png, format="png")
    plt.close(fig)
    contents["plot"] = png.getvalue()
    write_together({path: contents[key] for key, path in paths.items()})
    return {k: str(v) for k, v in paths.items()}
