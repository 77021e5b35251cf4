"""Label sets for zero-shot classification: SALT's dataset mappings and custom label files.

A label set is a dataset's class labels, each with the SALT standard events it maps to and,
once `resolve_entities` has asked the graph, the AKG entity that supplies its knowledge.

The data come from SALT (`akg dataset fetch` puts them under DEST/label_sets/):
- `salt_event_mapping.tsv` (`standard_event  dataset_label  dataset`): for each label of 28
  public datasets, the standard events it maps to. Its rows do not list a label's events from
  the most specific (mostly the reverse), so they are ordered here by
- `salt_event_roots.json`, the SALT hierarchy as nested objects (each node also repeats its
  descendants one level down, so an event's depth is the deepest place it appears): deeper is
  more specific; at the same depth, an event with fewer events below it is more specific (the
  hierarchy often puts an event and its broader classes side by side: `gunshot`, `explosion`
  and `non-machinery_impact` all sit right under `sound_of_things`); remaining ties keep the
  order of first appearance in the mapping.

Reading the mapping: blank and repeated rows are skipped, as are rows without a label; labels
keep the order of first appearance. A few labels are written twice in one dataset, in two
spellings (FSD50K `Engine_starting` and `Engine starting`, AudioSet `Marimba, xylophone` and
`Marimba_and_xylophone`, AnimalSound `Dog` and `dog`...), with the events split between them:
spellings that differ only by case, `_` for a space or `, ` for `and` are one label, spelled as
the dataset spells its other labels, with the events of all its spellings.

Custom label files: UTF-8 text, one label per line, or `label<TAB>entity` to name the AKG entity
yourself; blank lines and lines starting with `#` are ignored.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

from akg.errors import InputError
from akg.config import Settings
from akg.files import read_input
from akg.names import normalise_name

MAPPING_FILE = "salt_event_mapping.tsv"
ROOTS_FILE = "salt_event_roots.json"
MAPPING_HEADER = ("standard_event", "dataset_label", "dataset")
ENV_DIR = "AKG_LABEL_SETS_DIR"

# SALT dataset name -> (key, title). A dataset of the mapping that is not here gets its name in
# lower case as key and its name as title.
DATASETS: dict[str, tuple[str, str]] = {
    "Esc50": ("esc50", "ESC-50"),
    "UrbanSound8k": ("urbansound8k", "UrbanSound8K"),
    "Freesound50k": ("fsd50k", "FSD50K"),
    "AudioSet": ("audioset", "AudioSet"),
    "AudioSetStrong": ("audiosetstrong", "AudioSet (strong labels)"),
    "TutSoundEvents2016": ("tut2016", "TUT Sound Events 2016"),
    "TutSoundEvents2017": ("tut2017", "TUT Sound Events 2017"),
    "TutRareSoundEvents": ("tutraresoundevents", "TUT Rare Sound Events"),
    "TauSpatialSoundEvents2020": ("tauspatialsoundevents2020", "TAU Spatial Sound Events 2020"),
    "VggSound": ("vggsound", "VGGSound"),
    "Singapura": ("singapura", "SINGA:PURA"),
    "MaestroReal": ("maestroreal", "MAESTRO Real"),
    "MaestroSynthetic": ("maestrosynthetic", "MAESTRO Synthetic"),
    "MavdTraffic": ("mavdtraffic", "MAVD-traffic"),
    "IdmtTraffic": ("idmttraffic", "IDMT-Traffic"),
    "Sonyc": ("sonyc", "SONYC-UST"),
    "Nigens": ("nigens", "NIGENS"),
    "ChimeHome": ("chimehome", "CHiME-Home"),
    "DesedReal": ("desedreal", "DESED (real)"),
    "Starss22": ("starss22", "STARSS22"),
    "Starss23": ("starss23", "STARSS23"),
}


@dataclass(frozen=True)
class Subset:
    """A label set made of some labels of another, in the order given (by the labels' names)."""

    key: str
    title: str
    of: str          # key of the label set it is taken from
    names: tuple[str, ...]


# DCASE 2017 task 4 (large-scale weakly supervised sound event detection for smart cars): 17
# AudioSet classes, in the task's order (warning sounds, then vehicle sounds).
SUBSETS: dict[str, Subset] = {
    "dcase2017task4": Subset("dcase2017task4", "DCASE 2017 Task 4", "audioset", (
        "Train horn", "Air horn, truck horn", "Car alarm", "Reversing beeps", "Ambulance (siren)",
        "Police car (siren)", "Fire engine, fire truck (siren)", "Civil defense siren", "Screaming",
        "Bicycle", "Skateboard", "Car", "Car passing by", "Bus", "Truck", "Motorcycle", "Train")),
}


@dataclass(frozen=True)
class Label:
    name: str                  # the dataset's label as written (e.g. "dog_bark"), surrounding blanks removed
    text: str                  # for prompts: underscores to spaces, trimmed ("dog bark"); case as given
    events: tuple[str, ...]    # SALT standard events, normalised like AKG names, most specific first
    entity: str | None = None  # the AKG entity chosen by resolve_entities


@dataclass(frozen=True)
class LabelSet:
    key: str                   # "esc50", "fsd50k", ..., or "custom:<file name>"
    title: str                 # human name, e.g. "ESC-50"
    labels: tuple[Label, ...]
    source: str                # the mapping file or custom file it came from
    notes: tuple[str, ...] = field(default=(), compare=False)  # what was corrected while reading

    def identity(self) -> str:
        """sha256 over the key and each label's (name, entity): a cache key for derived data."""
        payload = json.dumps([self.key, [[label.name, label.entity] for label in self.labels]],
                             ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def coverage(self) -> dict:
        missing = [label.name for label in self.labels if label.entity is None]
        n = len(self.labels)
        return {"labels": n, "with_entity": n - len(missing), "ratio": (n - len(missing)) / n if n else 0.0,
                "missing": missing}

    def __len__(self) -> int:
        return len(self.labels)


# ---------------------------------------------------------------------------------------------
# Finding and reading SALT's files


def find_mapping(explicit: Path | str | None = None, *, settings: Settings | None = None) -> Path:
    """The SALT mapping: `explicit` (the file or its folder), else the label sets folder of the settings
    ($AKG_LABEL_SETS_DIR, else the data folder where `akg dataset fetch` put it: AKG_HOME/data/label_sets).
    The current directory plays no part, so every command finds it from anywhere."""
    if explicit is not None:
        path = Path(explicit)
        if path.is_dir():
            path = path / MAPPING_FILE
        if not path.is_file():
            raise InputError("no such file (the SALT label mapping)", file=str(path))
        return path
    settings = settings or Settings.from_env()
    path = settings.label_sets_dir / MAPPING_FILE
    if path.is_file():
        return path
    if settings.label_sets_from_env:
        raise InputError(f"{ENV_DIR}={settings.label_sets_dir}: there is no {MAPPING_FILE} in that folder; point it "
                         "at the label_sets folder written by `akg dataset fetch`")
    raise InputError(f"the SALT label mapping was not found ({path} does not exist): run `akg dataset fetch` "
                     "(or `akg dataset fetch --from DIR` with a local copy), or set "
                     f"{ENV_DIR} to a folder holding {MAPPING_FILE} and {ROOTS_FILE}")


def _stamp(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return str(path.resolve()), st.st_mtime_ns, st.st_size


def _specificity(roots_path: Path) -> dict[str, tuple[int, int]]:
    return _read_specificity(*_stamp(roots_path))


@lru_cache(maxsize=4)
def _read_specificity(path: str, _mtime: int, _size: int) -> dict[str, tuple[int, int]]:
    """event -> (depth, -descendants): the deepest place it appears in the hierarchy, then the
    fewer events below it the more specific (a leaf before an inner node at the same depth)."""
    try:
        tree = json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"not a valid JSON file ({e})", file=path) from None
    if not isinstance(tree, dict):
        raise InputError("expected the SALT hierarchy as nested objects", file=path)
    depth: dict[str, int] = {}
    below: dict[str, set[str]] = {}

    def walk(node: dict, level: int) -> set[str]:
        names: set[str] = set()
        for name, children in node.items():
            event = normalise_name(name)
            depth[event] = max(depth.get(event, -1), level)
            under = walk(children, level + 1) if isinstance(children, dict) else set()
            below.setdefault(event, set()).update(under - {event})
            names |= under | {event}
        return names

    walk(tree, 0)
    return {event: (depth[event], -len(below[event])) for event in depth}


def _merge_key(label: str) -> str:
    """Spellings of one label: case, `_` for a space and `, ` for ` and ` do not matter."""
    text = normalise_name(label).replace(",", " and ")
    text = re.sub(r"\s+", " ", text).strip()
    return re.sub(r"\band(?: and)+\b", "and", text)


@dataclass(frozen=True)
class _Dataset:
    salt: str
    labels: tuple[tuple[str, tuple[str, ...]], ...]   # (name, raw events in first-appearance order)
    notes: tuple[str, ...]


def _spelling_rank(names: Sequence[str], spelling: str, events: int) -> tuple:
    """Prefer the spelling that follows the dataset's style (separator, initial case), then more events."""
    underscores = sum("_" in n and " " not in n for n in names)
    spaces = sum(" " in n for n in names)
    foreign = " " if underscores > spaces else "_"
    upper = sum(n[:1].isupper() for n in names) * 2 > len(names)
    return (foreign not in spelling, spelling[:1].isupper() == upper, events)


def _read_mapping(path: Path) -> dict[str, _Dataset]:
    return _parse_mapping(*_stamp(path))


@lru_cache(maxsize=4)
def _parse_mapping(path: str, _mtime: int, _size: int) -> dict[str, _Dataset]:
    try:
        text = Path(path).read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(f"not valid UTF-8 (byte offset {e.start})", file=path) from None
    lines = text.split("\n")
    header = tuple(f.strip().lower() for f in lines[0].rstrip("\r").split("\t")) if lines else ()
    if header != MAPPING_HEADER:
        raise InputError(f"expected the header {'<TAB>'.join(MAPPING_HEADER)!r}, found {lines[0][:80]!r}",
                         file=path, line=1)
    # dataset -> merge key -> spelling -> [events in order]; dicts keep first-appearance order
    found: dict[str, dict[str, dict[str, list[str]]]] = {}
    for lineno, raw in enumerate(lines[1:], start=2):
        raw = raw.rstrip("\r")
        if not raw.strip():
            continue
        parts = raw.split("\t")
        if len(parts) != 3:
            raise InputError(f"expected 3 tab-separated columns, found {len(parts)}", file=path, line=lineno)
        event, label, dataset = (p.strip() for p in parts)
        if not label or not dataset:
            continue  # a row without a label names nothing
        spellings = found.setdefault(dataset, {}).setdefault(_merge_key(label), {})
        events = spellings.setdefault(label, [])
        if event and event not in events:
            events.append(event)
    datasets = {}
    for salt, groups in found.items():
        all_names = [name for spellings in groups.values() for name in spellings]
        labels, notes = [], []
        for spellings in groups.values():
            if len(spellings) == 1:
                (name, events), = spellings.items()
                labels.append((name, tuple(events)))
                continue
            name = max(spellings, key=lambda s: _spelling_rank(all_names, s, len(spellings[s])))
            merged: list[str] = []
            for events in spellings.values():
                merged += [e for e in events if e not in merged]
            labels.append((name, tuple(merged)))
            others = ", ".join(repr(s) for s in spellings if s != name)
            notes.append(f"{salt}: {others} read as {name!r} (one label in two spellings)")
        datasets[salt] = _Dataset(salt, tuple(labels), tuple(notes))
    return datasets


def _roots_for(mapping: Path) -> Path:
    roots = mapping.parent / ROOTS_FILE
    if not roots.is_file():
        raise InputError(f"{ROOTS_FILE} (the SALT hierarchy, needed to order events) is not next to the mapping; "
                         "run `akg dataset fetch`", file=str(roots))
    return roots


def _ordered(events: Iterable[str], specificity: dict[str, tuple[int, int]]) -> tuple[str, ...]:
    """Normalised, deduplicated, most specific first: deepest first, then fewest events below;
    ties keep their order. An event missing from the hierarchy comes last."""
    unique: list[str] = []
    for event in events:
        e = normalise_name(event)
        if e and e not in unique:
            unique.append(e)
    unknown = (-1, 0)
    return tuple(sorted(unique, key=lambda e: tuple(-x for x in specificity.get(e, unknown))))


def label_text(name: str) -> str:
    return re.sub(r"\s+", " ", name.replace("_", " ")).strip()


def _key_of(salt: str) -> str:
    return DATASETS.get(salt, (salt.lower(), salt))[0]


def _title_of(salt: str) -> str:
    return DATASETS.get(salt, (salt.lower(), salt))[1]


def _ident(text: str) -> str:
    return re.sub(r"[^0-9a-z]", "", text.lower())


def _build(mapping: Path, salt: str) -> LabelSet:
    data = _read_mapping(mapping)[salt]
    specificity = _specificity(_roots_for(mapping))
    labels = tuple(Label(name, label_text(name), _ordered(events, specificity)) for name, events in data.labels)
    return LabelSet(_key_of(salt), _title_of(salt), labels, str(mapping), data.notes)


def subset(label_set: LabelSet, names: Sequence[str], key: str, title: str) -> LabelSet:
    """The labels of `label_set` with these names (exact, else the same label in another spelling), in this order."""
    by_name = {label.name: label for label in label_set.labels}
    by_key = {_merge_key(label.name): label for label in label_set.labels}
    chosen, missing = [], []
    for name in names:
        label = by_name.get(name) or by_key.get(_merge_key(name))
        if label is None:
            missing.append(name)
        else:
            chosen.append(label)
    if missing:
        raise InputError(f"{key}: not among the labels of {label_set.key}: {', '.join(map(repr, missing))}",
                         file=label_set.source)
    return LabelSet(key, title, tuple(chosen), label_set.source)


def _lookup(mapping: Path) -> dict[str, str]:
    """Every accepted spelling of a dataset id -> its SALT name (or a subset key)."""
    table: dict[str, str] = {}
    for salt in _read_mapping(mapping):
        for alias in (_key_of(salt), salt, _title_of(salt)):
            table.setdefault(_ident(alias), salt)
    for sub in SUBSETS.values():
        if _ident(sub.of) in table:
            for alias in (sub.key, sub.title):
                table.setdefault(_ident(alias), sub.key)
    return table


def available(mapping: Path) -> list[dict]:
    """Every dataset the mapping covers, and the sets derived from them, by key."""
    mapping = Path(mapping)
    rows = []
    for salt, data in _read_mapping(mapping).items():
        rows.append({"key": _key_of(salt), "title": _title_of(salt), "salt": salt, "labels": len(data.labels)})
    for sub in SUBSETS.values():
        of = next((r for r in rows if r["key"] == sub.of), None)
        if of is None:
            continue
        rows.append({"key": sub.key, "title": sub.title, "salt": of["salt"], "labels": len(sub.names),
                     "subset_of": sub.of})
    return sorted(rows, key=lambda r: r["key"])


def _looks_like_path(text: str) -> bool:
    return "/" in text or os.sep in text or Path(text).suffix.lower() in (".txt", ".tsv", ".csv", ".lst", ".labels")


def load(name_or_path: str, mapping: Path | None = None) -> LabelSet:
    """A dataset's label set by key (`esc50`), SALT name (`Esc50`) or title (`ESC-50`), any case;
    or a custom label file by path."""
    text = str(name_or_path).strip()
    if not text:
        raise InputError("no label set named: give a dataset key (see `labels list`) or a label file")
    if _looks_like_path(text):
        return load_file(Path(text))
    try:
        mapping_path = find_mapping(mapping)
    except InputError:
        if Path(text).is_file():
            return load_file(Path(text))
        raise
    found = _lookup(mapping_path).get(_ident(text))
    if found is None:
        if Path(text).is_file():
            return load_file(Path(text))
        keys = ", ".join(r["key"] for r in available(mapping_path))
        raise InputError(f"no label set {text!r}: use a key ({keys}) or the path of a label file")
    if found in SUBSETS:
        sub = SUBSETS[found]
        return subset(load(sub.of, mapping_path), sub.names, sub.key, sub.title)
    return _build(mapping_path, found)


# ---------------------------------------------------------------------------------------------
# Custom label files


def load_file(path: Path | str) -> LabelSet:
    """A custom label file: one label per line, or `label<TAB>entity`; `#` lines and blank lines ignored."""
    path = Path(path)
    name = str(path)
    data = read_input(path, "a label file")
    labels: list[Label] = []
    seen: dict[str, tuple[int, str]] = {}
    for lineno, raw in enumerate(data.split(b"\n"), start=1):
        try:
            line = raw.decode("utf-8").rstrip("\r")
        except UnicodeDecodeError as e:
            raise InputError(f"not valid UTF-8 (byte 0x{raw[e.start]:02x} at column {e.start + 1})",
                             file=name, line=lineno) from None
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) > 2:
            raise InputError(f"expected 'label' or 'label<TAB>entity', found {len(parts)} tab-separated columns",
                             file=name, line=lineno)
        label = parts[0].strip()
        entity = normalise_name(parts[1]) if len(parts) == 2 else ""
        if not label:
            raise InputError("empty label", file=name, line=lineno)
        key = normalise_name(label_text(label))
        if key in seen:
            first_line, first = seen[key]
            same = "" if first == label else f" ({first!r})"
            raise InputError(f"duplicate label {label!r}: already on line {first_line}{same}", file=name, line=lineno)
        seen[key] = (lineno, label)
        labels.append(Label(label, label_text(label), (entity,) if entity else (), entity or None))
    if not labels:
        raise InputError("no labels in the file (only blank lines or # comments)", file=name)
    return LabelSet(f"custom:{path.name}", f"custom labels ({path.name})", tuple(labels), name)


# ---------------------------------------------------------------------------------------------
# Entities


def resolve_entities(label_set: LabelSet, existing: Callable[[list[str]], set[str]]) -> LabelSet:
    """Give each label the most specific of its events that is an AKG entity, else its own text
    (normalised) if that is one, else None. `existing(names)` says which names are entities.

    Events are already most specific first (see `load`); a custom label's events are the entity
    its file names, which is used only if the graph has it.
    """
    fallback = {label.name: normalise_name(label.text) for label in label_set.labels}
    wanted = sorted({e for label in label_set.labels for e in label.events} | {f for f in fallback.values() if f})
    found = set(existing(wanted)) if wanted else set()
    labels = []
    for label in label_set.labels:
        entity = next((e for e in label.events if e in found), None)
        if entity is None and fallback[label.name] in found:
            entity = fallback[label.name]
        labels.append(replace(label, entity=entity))
    return replace(label_set, labels=tuple(labels))


def graph_existing(graph, batch: int = 5000) -> Callable[[list[str]], set[str]]:
    """An `existing` for resolve_entities that asks a graph (the `existing_entities` query), remembering answers."""
    from akg import queries

    query = queries.get("existing_entities")
    known: dict[str, bool] = {}

    def existing(names: list[str]) -> set[str]:
        todo = sorted({n for n in names if n not in known})
        for start in range(0, len(todo), batch):
            chunk = todo[start:start + batch]
            rows = graph.read(query, {"names": chunk})
            hits = set(rows[0]["names"]) if rows else set()
            known.update((n, n in hits) for n in chunk)
        return {n for n in names if known[n]}

    return existing
