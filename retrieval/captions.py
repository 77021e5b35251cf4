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


def read_caption_file(path: Path, audio_dir: Path | None = None) -> CaptionFile:
    path = Path(path)
    text = read_input(path, "a captions CSV").decode("utf-8", errors="replace")
    reader = csv.DictReader(io.StringIO(text))
    columns = [c.strip() for c in reader.fieldnames or []]
    reader.fieldnames = columns
    rows = list(reader)
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
    out = CaptionFile(layout)
    if layout == "captions":
        out.captions = [Caption(r["caption"].strip(), -1) for r in rows if (r.get("caption") or "").strip()]
    else:
        clip_of: dict[str, int] = {}
        for line, r in enumerate(rows, 2):
            if layout == "clotho":
                key = (r.get("file_name") or "").strip()
                texts = [(r.get(f"caption_{i}") or "").strip() for i in range(1, 6)]
                stems = None
            else:
                yt, start = (r.get("youtube_id") or "").strip(), (r.get("start_time") or "").strip()
                key = f"{yt}_{start}"
                texts = [(r.get("caption") or "").strip()]
                stems = [key, yt, f"Y{yt}", (r.get("audiocap_id") or "").strip()]
            if not key.strip("_"):
                raise InputError("a row without its clip (file_name, or youtube_id and start_time)", file=str(path), line=line)
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
    if not out.captions:
        raise InputError("the file lists no captions" + (f" (no audio found for its {len(out.missing)} clips "
                         f"in {audio_dir})" if out.missing else ""), file=str(path))
    return out
