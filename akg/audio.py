"""Audio clips for CLAP: decode, mix to mono, resample, and cut into model-sized windows.

Decoding is libsndfile (the build bundled with `soundfile`): WAV, FLAC, Ogg/Vorbis, Opus and MP3.
Every problem with a clip is an `AudioError` that names the file and says what is wrong in plain
words; what can be checked before decoding (existence, extension, size, duration from the header)
is checked first, so a huge file is refused without being read.

Bounds (`check_max_seconds`): a clip may last at most `max_seconds` (--max-seconds, default
DEFAULT_MAX_SECONDS), which may itself be at most MAX_SECONDS_LIMIT (an hour: a clip's samples are
held in memory whole, ~700 MB for an hour at 48 kHz); and it may hold at most the samples of that
many seconds of 96 kHz stereo, so that many channels or an extreme rate cannot multiply what a
short clip decodes to. A file that holds less audio than its header announces (a cut-off download)
is refused as truncated rather than used as a shorter clip.
"""

from __future__ import annotations

import hashlib
import math
import os
import stat
from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from akg.errors import InputError

SUPPORTED = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3")  # what libsndfile (soundfile's bundled build) decodes
DEFAULT_MAX_SECONDS = 600.0
MAX_SECONDS_LIMIT = 3600.0
_SAMPLES_PER_SECOND = 96000 * 2  # the most samples (frames x channels) a clip may hold per second of max_seconds

_CHUNK = 1 << 20  # 1 MiB, for hashing


class AudioError(InputError):
    """A clip that cannot be used: names the file and the problem."""

    def __init__(self, problem: str, *, file: str | os.PathLike | None = None):
        super().__init__(problem, file=None if file is None else str(file))


def _check_file(path: Path) -> None:
    """The checks that need no decoding: exists, regular file, readable, supported, not empty."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise AudioError("no such file", file=path) from None
    except OSError as e:
        raise AudioError(f"cannot be read: {e.strerror or e}", file=path) from None
    if path.is_dir():
        raise AudioError("is a directory, not an audio file", file=path)
    if not path.is_file():
        raise AudioError("is not a regular file (a pipe or a device?)", file=path)
    ext = path.suffix.lower()
    if ext not in SUPPORTED:
        shown = f"'{path.suffix}'" if path.suffix else "no extension"
        raise AudioError(
            f"unsupported audio format ({shown}); supported extensions: {', '.join(SUPPORTED)}", file=path
        )
    if st.st_size == 0:
        raise AudioError("empty file (0 bytes)", file=path)
    if not os.access(path, os.R_OK):
        raise AudioError("cannot be read: permission denied", file=path)


def check_max_seconds(value) -> float:
    """A clip-length limit a user gave (--max-seconds): seconds above 0 and at most MAX_SECONDS_LIMIT."""
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not ok or not (0 < value <= MAX_SECONDS_LIMIT):  # `not (...)` also refuses NaN
        raise InputError(f"--max-seconds {value!r}: give the longest clip to read, in seconds, above 0 and at most "
                         f"{MAX_SECONDS_LIMIT:g} (a clip is decoded into memory whole)")
    return float(value)


def _placeholder(size: int) -> bool:
    """A RIFF or data size that a program writing to a pipe puts in the header, not knowing the length:
    0, 0xFFFFFFFF (libsndfile, ffmpeg), 0x7FFFFFFF (arecord), 0x7FFFF000 (sox). Such a file is whole
    whatever it holds, so it is never called truncated."""
    return size == 0 or size >= 0x7FFFF000


def _declared_wav_frames(path: Path) -> int | None:
    """The frames a WAV file's `data` chunk announces, from its header; None when it does not say
    (not RIFF/WAVE, or a streamed file with a placeholder size). libsndfile quietly shortens its
    count to what the file holds, so a truncated file is only seen by reading the header here."""
    with open(path, "rb") as f:
        head = f.read(1 << 16)  # the chunks before `data` (fmt, LIST, ...) are small
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE" or _placeholder(int.from_bytes(head[4:8], "little")):
        return None
    pos, align = 12, 0
    while pos + 8 <= len(head):
        chunk, size = head[pos:pos + 4], int.from_bytes(head[pos + 4:pos + 8], "little")
        if chunk == b"fmt " and pos + 22 <= len(head):
            align = int.from_bytes(head[pos + 20:pos + 22], "little")  # bytes per frame
        if chunk == b"data":
            return size // align if align and not _placeholder(size) else None
        pos += 8 + size + (size & 1)
    return None


def _libsndfile_message(e: Exception) -> str:
    msg = getattr(e, "error_string", None) or str(e)
    return msg.strip() or "unknown decoder error"


def load_audio(path, sample_rate: int, *, max_seconds: float = DEFAULT_MAX_SECONDS) -> np.ndarray:
    """Decode with soundfile (libsndfile: wav, flac, ogg/vorbis, opus, mp3), mix to mono (mean of channels),
    resample to `sample_rate` with scipy.signal.resample_poly (up/down from the gcd), return float32 1-D in [-1, 1].

    Raises `AudioError` for a missing, unsupported, empty, undecodable, silent-by-absence (no
    samples), too long (more than `max_seconds`, judged from the header before decoding) or
    non-finite (NaN/inf samples) clip.
    """
    if not isinstance(sample_rate, (int, np.integer)) or isinstance(sample_rate, bool) or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive integer, not {sample_rate!r}")
    try:
        check_max_seconds(max_seconds)
    except InputError as e:  # a caller's bug here: users' values are checked where they are given
        raise ValueError(str(e)) from None
    p = Path(path)
    _check_file(p)

    # The header: format, rate, length. Opening it is where a non-audio file is refused.
    try:
        info = sf.info(str(p))
    except (sf.SoundFileError, RuntimeError) as e:
        raise AudioError(f"corrupt or not an audio file: {_libsndfile_message(e)}", file=p) from None
    if info.samplerate <= 0:
        raise AudioError(f"corrupt or not an audio file: sample rate {info.samplerate} in the header", file=p)
    if info.frames <= 0:
        raise AudioError("no audio samples", file=p)
    duration = info.frames / info.samplerate
    if duration > max_seconds:
        raise AudioError(f"{duration:.1f} s long; the limit is {max_seconds:g} s (--max-seconds)", file=p)
    if info.frames * info.channels > max_seconds * _SAMPLES_PER_SECOND:
        raise AudioError(f"{info.channels} channels at {info.samplerate} Hz: more samples than {max_seconds:g} s of "
                         "96 kHz stereo (--max-seconds)", file=p)
    if p.suffix.lower() == ".wav":
        declared = _declared_wav_frames(p)
        if declared is not None and declared > info.frames + 1:  # one frame of slack for writers that round
            raise AudioError(f"truncated: the header announces {declared / info.samplerate:.2f} s of audio, the "
                             f"file holds {info.frames / info.samplerate:.2f} s", file=p)

    # Decode, never past the limit (a header can under-report; libsndfile clamps, this is belt and braces).
    limit = math.floor(max_seconds * info.samplerate) + 1
    try:
        data, rate = sf.read(str(p), frames=limit, dtype="float32", always_2d=True)
    except (sf.SoundFileError, RuntimeError) as e:
        raise AudioError(f"corrupt or not an audio file: {_libsndfile_message(e)}", file=p) from None
    if data.shape[0] == 0:
        raise AudioError("no audio samples", file=p)
    if data.shape[0] / rate > max_seconds:
        raise AudioError(f"longer than the limit of {max_seconds:g} s (--max-seconds)", file=p)
    # Fewer frames than the header announced: the file stops early. MP3's count is an estimate from
    # its Xing header or bit rate, hence 1 % of slack; the other formats give it exactly.
    if data.shape[0] < 0.99 * info.frames:
        raise AudioError(f"truncated: the header announces {duration:.2f} s of audio, decoding gave "
                         f"{data.shape[0] / rate:.2f} s", file=p)
    if not np.isfinite(data).all():
        raise AudioError("contains NaN or infinite samples", file=p)

    wave = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
    del data
    if rate != sample_rate:
        g = gcd(int(rate), int(sample_rate))
        wave = resample_poly(wave, int(sample_rate) // g, int(rate) // g)
    # Float files may hold values past full scale, and resampling rings a little around clipped edges.
    return np.clip(np.ascontiguousarray(wave, dtype=np.float32), -1.0, 1.0)


def file_sha256(path) -> str:
    """Hex SHA-256 of the file's bytes, streamed in 1 MiB chunks (the key of cached audio embeddings).

    Only a regular file is hashed: /dev/zero would be read forever and a FIFO blocks until someone
    writes to it. The file is opened without blocking and its kind checked on the open descriptor
    (fstat), so a path swapped for a pipe between a check and the open cannot slip through.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise AudioError("no such file", file=path) from None
    except IsADirectoryError:
        raise AudioError("is a directory, not an audio file", file=path) from None
    except OSError as e:
        raise AudioError(f"cannot be read: {e.strerror or e}", file=path) from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise AudioError("is a directory, not an audio file" if stat.S_ISDIR(mode)
                         else "is not a regular file (a pipe or a device?)", file=path)
    h = hashlib.sha256()
    with open(fd, "rb") as f:
        try:
            for chunk in iter(lambda: f.read(_CHUNK), b""):
                h.update(chunk)
        except OSError as e:
            raise AudioError(f"cannot be read: {e.strerror or e}", file=path) from None
    return h.hexdigest()


def windows(wave: np.ndarray, sample_rate: int, window_seconds: float) -> list[np.ndarray]:
    """Split a clip longer than the model's window into consecutive windows of exactly window length
    (the last one zero-padded, unless it is shorter than 1/4 window and there is at least one window
    before it, in which case it is dropped); a clip shorter than one window is returned as one piece,
    unpadded (the model's feature extractor pads it). Deterministic: no random crops.

    Full windows are views into `wave`; a padded last window is a new array.
    """
    wave = np.asarray(wave)
    if wave.ndim != 1:
        raise ValueError(f"windows() takes a 1-D clip, not shape {wave.shape}")
    if sample_rate <= 0 or not (window_seconds > 0):
        raise ValueError(f"sample_rate and window_seconds must be positive ({sample_rate!r}, {window_seconds!r})")
    size = round(window_seconds * sample_rate)
    if size <= 0:
        raise ValueError(f"a window of {window_seconds} s at {sample_rate} Hz holds no samples")
    n = wave.shape[0]
    if n <= size:
        return [wave]
    full, tail = divmod(n, size)
    pieces = [wave[i * size : (i + 1) * size] for i in range(full)]
    if tail and tail * 4 >= size:  # full >= 1 here, so a short tail always has a window before it
        last = np.zeros(size, dtype=wave.dtype)
        last[:tail] = wave[full * size :]
        pieces.append(last)
    return pieces
