"""Clips for the audio page: uploaded bytes checked and staged as a file, or picked from AKG_AUDIO_DIR.

An upload is refused, with a message naming the file, when its type is not one of UPLOAD_TYPES,
when it is empty or larger than the limit, or when its header is not audio; nothing is decoded
before those checks. Accepted bytes go to a temporary file (named by their content hash, with the
upload's extension) that the caller removes after use.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from akg.audio import AudioError

UPLOAD_TYPES = ("wav", "flac", "ogg", "mp3")
MAX_UPLOAD_MB = 20
MAX_UPLOAD_BYTES = MAX_UPLOAD_MB * 1024 * 1024
AUDIO_DIR_ENV = "AKG_AUDIO_DIR"
MAX_LISTED = 500


def display_name(name: str) -> str:
    """The uploaded file's own name, without any folders and control characters: how messages name it."""
    base = re.split(r"[\\/]", name or "")[-1]
    return "".join(ch for ch in base if ch.isprintable()).strip() or "upload"


def stage_upload(name: str, data: bytes, folder: Path, *, max_bytes: int = MAX_UPLOAD_BYTES) -> Path:
    """Check an uploaded clip and write it under `folder`; AudioError (naming `name`) if it is refused."""
    shown = display_name(name)
    ext = Path(shown).suffix.lower().lstrip(".")
    if ext not in UPLOAD_TYPES:
        kind = f"'.{ext}'" if ext else "no extension"
        raise AudioError(f"unsupported file type ({kind}); upload one of: {', '.join(UPLOAD_TYPES)}", file=shown)
    if len(data) == 0:
        raise AudioError("empty file (0 bytes)", file=shown)
    if len(data) > max_bytes:
        raise AudioError(f"{len(data) / 1024 / 1024:.1f} MB; the upload limit is {max_bytes / 1024 / 1024:g} MB",
                         file=shown)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"upload-{hashlib.sha256(data).hexdigest()[:16]}.{ext}"
    path.write_bytes(data)
    try:
        probe(path, shown)
    except AudioError:
        path.unlink(missing_ok=True)
        raise
    return path


def probe(path: Path, shown: str | None = None) -> None:
    """Refuse a file whose header libsndfile cannot read as audio (before any decoding)."""
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except (sf.SoundFileError, RuntimeError) as e:
        msg = (getattr(e, "error_string", None) or str(e)).replace(str(path), shown or str(path)).strip()
        raise AudioError(f"corrupt or not an audio file: {msg or 'unknown decoder error'}",
                         file=shown or str(path)) from None
    if info.samplerate <= 0 or info.frames <= 0:
        raise AudioError("no audio samples", file=shown or str(path))


def audio_dir() -> Path | None:
    """The folder of $AKG_AUDIO_DIR, if it is set (it may not exist: the page says so)."""
    from akg.config import Settings

    return Settings.from_env().audio_dir


def list_clips(folder: Path, limit: int = MAX_LISTED) -> list[Path]:
    """Audio files under `folder` (recursively, sorted, at most `limit`), by the extensions decoded here."""
    from akg.audio import SUPPORTED

    found = []
    base = Path(folder).resolve()
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for f in sorted(files):
            path = Path(root) / f
            if Path(f).suffix.lower() not in SUPPORTED or f.startswith("."):
                continue
            if not path.resolve().is_relative_to(base):
                continue  # a link pointing out of the folder is not offered
            if path.stat().st_size > MAX_UPLOAD_MB * 1024 * 1024:
                continue  # the same size limit as uploads
            found.append(path)
            if len(found) >= limit:
                return found
    return found
