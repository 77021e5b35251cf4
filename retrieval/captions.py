"""Caption files of the two standard retrieval layouts, recognised by their columns.

- Clotho: `file_name, caption_1, ..., caption_5` (one row per clip, the audio file named in the row).
- AudioCaps: `audiocap_id, youtube_id, start_time, caption` (one row per caption; the rows of a clip
  share its youtube_id and start_time). The clip's audio is looked up in the audio folder by id, as the
  common downloads name it: `{youtube_id}_{start_time}`, `{youtube_id}`, `Y{youtube_id}` or
  `{audiocap_id}`, with any supported audio extension.
- Any CSV with a `caption` column (a plain caption set for `akg search --clip`).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from akg.errors import InputError
from akg.files import read_input


@dataclass(frozen=True)
class Caption:
    text: str
    clip: int        # index into CaptionFile.clips (-1 for a plain caption set)


@dataclass
class CaptionFile:
    layout: str                                   # "clotho", "audiocaps" or "captions"
    clips: list[Path] = field(default_factory=list)
    captions: list[Caption] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)   # clips whose audio was not found (left out)


def _find_audio(audio_dir: Path, stems: list[str]) -> Path | None:
    from akg.audio import SUPPORTED

    for stem in stems:
        for ext in SUPPORTED:
            p = audio_dir / f"{stem}{ext}"
            if p.is_file():
                return p
    return None


def _rows(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header and the (first line, fields) of each row, strictly: a file that is not UTF-8 or whose
    quotes do not close is refused with its line, never read on with replacement characters or with
    the rest of the file swallowed into one caption."""
    data = read_input(path, "a captions CSV")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"not UTF-8 text (byte 0x{data[e.start]:02X}): save the file as UTF-8",
                         file=str(path), line=data[:e.start].count(b"\n") + 1) from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows, first = [], 1
    try:
        for fields in reader:
            if any(f.strip() for f in fields):
                rows.append((first, fields))
            first = reader.line_num + 1
    except csv.Error as e:
        problem = ("a quote opened in this row is never closed (the rest of the file would become one field)"
                   if "end of data" in str(e)
                   else f"not valid CSV ({e})")
        raise InputError(problem, file=str(path), line=first) from None
    if not rows:
        raise InputError("the file is empty (a header line was expected)", file=str(path), line=1)
    (_, header), *body = rows
    return [c.strip() for c in header], body


def read_caption_file(path: Path, audio_dir: Path | None = None) -> CaptionFile:
    """The captions and clips of a Clotho or AudioCaps file (or a plain caption column). Strict, with
    the file and line of a problem: a row with more or fewer fields than the header, a Clotho row
    with no caption, a clip listed twice (Clotho) or an audiocap_id used twice (AudioCaps) is refused
    rather than guessed at, because each would silently change what the metrics count."""
    path = Path(path)
    columns, body = _rows(path)
    cols = set(columns)
    if "file_name" in cols and "caption_1" in cols:
        layout = "clotho"
    elif {"audiocap_id", "youtube_id", "start_time", "caption"} <= cols:
        layout = "audiocaps"
    elif "caption" in cols:
        layout = "captions"
    else:
        raise InputError(f"unrecognised columns {columns}: expected Clotho (file_name, caption_1..caption_5), "
                         "AudioCaps (audiocap_id, youtube_id, start_time, caption) or a caption column",
                         file=str(path), line=1)
    for line, fields in body:  # every layout: an unquoted comma would cut a caption or shift the columns
        if len(fields) != len(columns):
            raise InputError(f"{len(fields)} fields where the header has {len(columns)} (a caption with a comma "
                             "must be quoted)", file=str(path), line=line)
    out = CaptionFile(layout)
    if layout == "captions":
        at = columns.index("caption")
        out.captions = [Caption(r[at].strip(), -1) for _, r in body if r[at].strip()]
    else:
        _clips_and_captions(out, columns, body, path, audio_dir)
    if not out.captions:
        raise InputError("the file lists no captions" + (f" (no audio found for its {len(out.missing)} clips "
                         f"in {audio_dir})" if out.missing else ""), file=str(path))
    return out


def _clips_and_captions(out: CaptionFile, columns: list[str], body: list[tuple[int, list[str]]], path: Path,
                        audio_dir: Path | None) -> None:
    """The clips of a Clotho or AudioCaps file (`out.layout`) and their captions, into `out`."""
    layout = out.layout
    clip_of: dict[str, int] = {}
    seen: dict[str, int] = {}   # Clotho file_name or AudioCaps audiocap_id -> the line that gave it
    for line, fields in body:
        r = {c: f.strip() for c, f in zip(columns, fields)}
        if layout == "clotho":
            key = r["file_name"]
            texts = [r.get(f"caption_{i}", "") for i in range(1, 6)]
            stems, unique, what = None, key, "clip"
        else:
            yt, start = r["youtube_id"], r["start_time"]
            key = f"{yt}_{start}"
            texts = [r["caption"]]
            stems, unique, what = [key, yt, f"Y{yt}", r["audiocap_id"]], r["audiocap_id"], "audiocap_id"
        if not key.strip("_") or not unique:
            raise InputError("a row without its clip (file_name, or audiocap_id, youtube_id and start_time)",
                             file=str(path), line=line)
        if not any(texts):
            raise InputError(f"no caption for {what} {unique!r}", file=str(path), line=line)
        if unique in seen:
            raise InputError(f"{what} {unique!r} again (first on line {seen[unique]})", file=str(path), line=line)
        seen[unique] = line
        if key not in clip_of:
            audio = None
            if audio_dir is not None:
                audio = (Path(audio_dir) / key if stems is None else _find_audio(Path(audio_dir), stems))
                if audio is None or not audio.is_file():
                    out.missing.append(key)
                    clip_of[key] = -1
                    continue
            clip_of[key] = len(out.clips)
            out.clips.append(audio if audio is not None else Path(key))
        if clip_of[key] >= 0:
            out.captions += [Caption(t, clip_of[key]) for t in texts if t]
