"""akg.audio: decoding real files of every supported format, resampling, windows, and bad inputs.

Every clip is written by the test itself with soundfile, so nothing here needs a fixture on disk
(and nothing here asks for the graph server).
"""

from __future__ import annotations

import hashlib
import os
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from akg.errors import AkgError, InputError
from akg.audio import (
    DEFAULT_MAX_SECONDS,
    MAX_SECONDS_LIMIT,
    SUPPORTED,
    AudioError,
    check_max_seconds,
    file_sha256,
    load_audio,
    windows,
)

MP3_WRITABLE = "MP3" in sf.available_formats()
needs_mp3 = pytest.mark.skipif(
    not MP3_WRITABLE, reason=f"this libsndfile ({sf.__libsndfile_version__}) cannot write MP3 (needs >= 1.1 with LAME)"
)

# (extension, soundfile.write keywords); the mp3 case is skipped only if libsndfile cannot write MP3.
FORMATS = [
    pytest.param(".wav", {"subtype": "PCM_16"}, id="wav-pcm16"),
    pytest.param(".wav", {"subtype": "FLOAT"}, id="wav-float"),
    pytest.param(".flac", {"format": "FLAC"}, id="flac"),
    pytest.param(".ogg", {"format": "OGG", "subtype": "VORBIS"}, id="ogg-vorbis"),
    pytest.param(".mp3", {"format": "MP3"}, id="mp3", marks=needs_mp3),
]
SOURCE_RATES = (8000, 22050, 44100, 48000)
TARGET_RATES = (48000, 16000)


def sine(freq: float, rate: int, seconds: float, amp: float = 0.5) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_hz(wave: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(len(wave))))
    return float(np.fft.rfftfreq(len(wave), 1 / rate)[np.argmax(spectrum)])


def rms(wave: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(wave, dtype=np.float64))))


def assert_names(err: pytest.ExceptionInfo, path: Path, *phrases: str) -> str:
    """The message starts with the file's name and says the problem."""
    msg = str(err.value)
    assert isinstance(err.value, InputError) and isinstance(err.value, AkgError)
    assert msg.startswith(f"{path}: "), msg
    assert err.value.file == str(path)
    for phrase in phrases:
        assert phrase in msg, msg
    return msg


# -- decoding and resampling -------------------------------------------------------------------


@pytest.mark.parametrize("target", TARGET_RATES)
@pytest.mark.parametrize("source", SOURCE_RATES)
@pytest.mark.parametrize("ext, write_kw", FORMATS)
def test_decode_resample_keeps_frequency_length_and_level(tmp_path, ext, write_kw, source, target):
    seconds, freq, amp = 0.5, 1000.0, 0.5
    clip = sine(freq, source, seconds, amp)
    path = tmp_path / f"tone-{source}{ext}"
    sf.write(path, clip, source, **write_kw)

    wave = load_audio(path, target)

    assert wave.dtype == np.float32 and wave.ndim == 1
    assert abs(len(wave) - len(clip) * target / source) <= 2
    assert np.all(np.abs(wave) <= 1.0)
    bin_hz = target / len(wave)
    assert abs(peak_hz(wave, target) - freq) <= bin_hz
    # Resampling keeps the level (a 0.5 sine has RMS 0.354); lossy codecs get a little slack.
    assert rms(wave) == pytest.approx(amp / np.sqrt(2), rel=0.03 if ext in (".wav", ".flac") else 0.1)


def test_opus_decodes(tmp_path):
    path = tmp_path / "tone.opus"
    sf.write(path, sine(440, 48000, 0.5), 48000, format="OGG", subtype="OPUS")
    wave = load_audio(path, 16000)
    assert abs(len(wave) - 8000) <= 2
    assert abs(peak_hz(wave, 16000) - 440) <= 16000 / len(wave)


def test_same_rate_is_not_resampled(tmp_path):
    clip = sine(440, 16000, 0.25)
    path = tmp_path / "same.wav"
    sf.write(path, clip, 16000, subtype="FLOAT")
    np.testing.assert_array_equal(load_audio(path, 16000), clip)


def test_stereo_mixes_to_the_mean(tmp_path):
    rng = np.random.default_rng(7)
    stereo = (rng.uniform(-0.5, 0.5, size=(4000, 2))).astype(np.float32)
    path = tmp_path / "stereo.wav"
    sf.write(path, stereo, 16000, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(path, 16000), stereo.mean(axis=1), atol=1e-7)

    # Opposite channels cancel: the mean, not the first channel, and not the sum.
    tone = sine(440, 16000, 0.25)
    path2 = tmp_path / "cancel.wav"
    sf.write(path2, np.stack([tone, -tone], axis=1), 16000, subtype="FLOAT")
    assert np.max(np.abs(load_audio(path2, 16000))) < 1e-6


@pytest.mark.parametrize("ext, write_kw", FORMATS)
def test_stereo_resampled_keeps_both_channels_at_half_level(tmp_path, ext, write_kw):
    left, right = sine(440, 44100, 1.0, 0.5), sine(2000, 44100, 1.0, 0.5)
    path = tmp_path / f"stereo{ext}"
    sf.write(path, np.stack([left, right], axis=1), 44100, **write_kw)
    wave = load_audio(path, 48000)
    assert abs(len(wave) - 48000) <= 2
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(len(wave))))
    freqs = np.fft.rfftfreq(len(wave), 1 / 48000)
    top2 = sorted(freqs[np.argsort(spectrum)[-2:]])
    assert abs(top2[0] - 440) <= 1 and abs(top2[1] - 2000) <= 1
    # Each tone at half its amplitude: total RMS = sqrt(2 * (0.25^2 / 2)) = 0.25.
    assert rms(wave) == pytest.approx(0.25, rel=0.1)


def test_full_scale_float_is_clipped_to_unit_range(tmp_path):
    path = tmp_path / "loud.wav"
    sf.write(path, np.full(800, 1.5, np.float32), 8000, subtype="FLOAT")
    wave = load_audio(path, 16000)
    assert wave.max() <= 1.0 and wave.min() >= -1.0


def test_uppercase_extension_is_accepted(tmp_path):
    path = tmp_path / "LOUD.WAV"
    sf.write(path, sine(440, 8000, 0.1), 8000)
    assert len(load_audio(path, 8000)) == 800


def test_str_paths_and_constants(tmp_path):
    path = tmp_path / "plain.wav"
    sf.write(path, sine(440, 8000, 0.1), 8000)
    assert len(load_audio(str(path), 8000)) == 800
    assert DEFAULT_MAX_SECONDS == 600.0
    assert SUPPORTED == (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3")


def test_no_file_handles_left_open(tmp_path):
    fd_dir = Path("/proc/self/fd")
    if not fd_dir.is_dir():
        pytest.skip("needs /proc/self/fd to count open files")
    good = tmp_path / "good.flac"
    sf.write(good, sine(440, 22050, 0.2), 22050)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all " * 20)
    before = len(os.listdir(fd_dir))
    for _ in range(20):
        load_audio(good, 16000)
        file_sha256(good)
        with pytest.raises(AudioError):
            load_audio(bad, 16000)
    assert len(os.listdir(fd_dir)) == before


# -- windows -----------------------------------------------------------------------------------


def test_windows_25s_gives_three_full_windows_last_zero_padded():
    rate = 48000
    wave = np.random.default_rng(1).uniform(-1, 1, 25 * rate).astype(np.float32)
    parts = windows(wave, rate, 10.0)
    assert len(parts) == 3
    assert all(p.shape == (480000,) and p.dtype == np.float32 for p in parts)
    np.testing.assert_array_equal(parts[0], wave[:480000])
    np.testing.assert_array_equal(parts[1], wave[480000:960000])
    np.testing.assert_array_equal(parts[2][:240000], wave[960000:])
    assert not parts[2][240000:].any()


def test_windows_drops_a_tail_shorter_than_a_quarter_window():
    rate = 48000
    wave = np.ones(int(20.5 * rate), np.float32)
    parts = windows(wave, rate, 10.0)
    assert len(parts) == 2
    assert all(len(p) == 480000 and p.all() for p in parts)


def test_windows_keeps_a_tail_of_exactly_a_quarter_window():
    parts = windows(np.ones(1250, np.float32), 100, 10.0)  # 12.5 s: 2.5 s tail = 1/4 window
    assert [len(p) for p in parts] == [1000, 1000]
    assert parts[1][:250].all() and not parts[1][250:].any()


def test_windows_short_clip_is_one_unpadded_piece():
    rate = 48000
    wave = sine(440, rate, 3.0)
    parts = windows(wave, rate, 10.0)
    assert len(parts) == 1 and len(parts[0]) == 3 * rate
    np.testing.assert_array_equal(parts[0], wave)
    # Exactly one window long: still one piece, nothing added.
    assert [len(p) for p in windows(np.zeros(480000, np.float32), rate, 10.0)] == [480000]


def test_windows_is_deterministic():
    wave = np.random.default_rng(3).uniform(-1, 1, 33 * 16000).astype(np.float32)
    a, b = windows(wave, 16000, 10.0), windows(wave, 16000, 10.0)
    assert len(a) == len(b) == 4
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_windows_rejects_nonsense():
    with pytest.raises(ValueError):
        windows(np.zeros((2, 10)), 16000, 10.0)
    with pytest.raises(ValueError):
        windows(np.zeros(10), 16000, 0.0)


def test_long_file_end_to_end(tmp_path):
    path = tmp_path / "long.flac"
    sf.write(path, sine(440, 16000, 25.0, 0.3), 16000)
    parts = windows(load_audio(path, 48000), 48000, 10.0)
    assert [len(p) for p in parts] == [480000] * 3


# -- file_sha256 -------------------------------------------------------------------------------


def test_file_sha256_matches_hashlib(tmp_path):
    path = tmp_path / "blob.wav"
    data = np.random.default_rng(5).bytes(int(2.5 * (1 << 20)))  # more than two 1 MiB chunks
    path.write_bytes(data)
    assert file_sha256(path) == hashlib.sha256(data).hexdigest()
    assert file_sha256(str(path)) == hashlib.sha256(data).hexdigest()
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    assert file_sha256(empty) == hashlib.sha256(b"").hexdigest()


def test_file_sha256_missing(tmp_path):
    path = tmp_path / "gone.wav"
    with pytest.raises(AudioError) as err:
        file_sha256(path)
    assert_names(err, path, "no such file")


@pytest.mark.timeout(30)  # before the fix each of these read or waited forever
def test_file_sha256_refuses_what_is_not_a_regular_file(tmp_path):
    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)  # no writer: opening it for reading used to block
    zero = tmp_path / "zero.wav"
    zero.symlink_to("/dev/zero")  # endless: reading it used to never end
    for path in (fifo, zero, Path("/dev/zero")):
        with pytest.raises(AudioError) as err:
            file_sha256(path)
        assert_names(err, path, "is not a regular file")
    folder = tmp_path / "clips.wav"
    folder.mkdir()
    with pytest.raises(AudioError) as err:
        file_sha256(folder)
    assert_names(err, folder, "is a directory")


# -- bad inputs --------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    path = tmp_path / "nowhere.wav"
    with pytest.raises(AudioError) as err:
        load_audio(path, 16000)
    assert_names(err, path, "no such file")


def test_directory(tmp_path):
    path = tmp_path / "clips.wav"
    path.mkdir()
    with pytest.raises(AudioError) as err:
        load_audio(path, 16000)
    assert_names(err, path, "is a directory")


def test_unsupported_extension_lists_the_supported_ones(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(AudioError) as err:
        load_audio(path, 16000)
    msg = assert_names(err, path, "unsupported audio format", "'.txt'")
    for ext in SUPPORTED:
        assert ext in msg

    # A real AIFF is still refused by extension, before any decoding.
    aiff = tmp_path / "tone.aiff"
    sf.write(aiff, sine(440, 8000, 0.1), 8000)
    with pytest.raises(AudioError) as err:
        load_audio(aiff, 16000)
    assert_names(err, aiff, "unsupported audio format", "'.aiff'")

    bare = tmp_path / "noext"
    bare.write_bytes(b"x")
    with pytest.raises(AudioError) as err:
        load_audio(bare, 16000)
    assert_names(err, bare, "unsupported audio format", "no extension")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.flac"
    path.touch()
    with pytest.raises(AudioError) as err:
        load_audio(path, 16000)
    assert_names(err, path, "empty file (0 bytes)")


@pytest.mark.parametrize("name", ["text.wav", "noise.mp3", "noise.ogg"])
def test_not_audio(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"this is a text file, not audio\n" * 50 if name.endswith(".wav") else b"\x00\x01" * 2500)
    with pytest.raises(AudioError) as err:
        load_audio(path, 16000)
    assert_names(err, path, "corrupt or not an audio file: ")


def test_wav_header_with_nothing_decodable(tmp_path):
    # A RIFF/WAVE header with a format chunk that makes no sense (zero channels).
    path = tmp_path / "broken.wav"
    fmt = struct.pack("<HHIIHH", 1, 0, 16000, 32000, 2, 16)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", 4) + b"\0" * 4
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    with pytest.raises(AudioError) as err:
        load_audio(path, 16000)
    assert_names(err, path, "corrupt or not an audio file: ")


def test_truncated_flac_fails_while_decoding(tmp_path):
    path = tmp_path / "cut.flac"
    sf.write(path, sine(440, 44100, 2.0), 44100)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # the header still says 2 s
    with pytest.raises(AudioError) as err:
        load_audio(path, 16000)
    assert_names(err, path, "corrupt or not an audio file: ")


def test_no_audio_samples(tmp_path):
    path = tmp_path / "silent-by-absence.wav"
    sf.write(path, np.zeros((0, 1), np.float32), 16000)
    assert path.stat().st_size > 0  # a header, no frames
    with pytest.raises(AudioError) as err:
        load_audio(path, 16000)
    assert_names(err, path, "no audio samples")


def test_too_long_is_refused_from_the_header(tmp_path, monkeypatch):
    path = tmp_path / "five-seconds.flac"
    sf.write(path, sine(440, 8000, 5.0), 8000)
    assert len(load_audio(path, 8000, max_seconds=6)) == 40000  # under the limit: fine

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded a clip that the header already shows is too long")

    monkeypatch.setattr(sf, "read", no_decoding)
    monkeypatch.setattr(sf.SoundFile, "read", no_decoding)
    with pytest.raises(AudioError) as err:
        load_audio(path, 16000, max_seconds=2)
    assert_names(err, path, "5.0 s long; the limit is 2 s (--max-seconds)")


def test_nan_and_inf_samples(tmp_path):
    for name, bad in (("nan.wav", np.nan), ("inf.wav", np.inf)):
        clip = sine(440, 8000, 0.1)
        clip[100] = bad
        path = tmp_path / name
        sf.write(path, clip, 8000, subtype="FLOAT")
        with pytest.raises(AudioError) as err:
            load_audio(path, 16000)
        assert_names(err, path, "NaN or infinite samples")


def test_bad_arguments_are_programming_errors(tmp_path):
    path = tmp_path / "ok.wav"
    sf.write(path, sine(440, 8000, 0.1), 8000)
    with pytest.raises(ValueError):
        load_audio(path, 0)
    with pytest.raises(ValueError):
        load_audio(path, 16000, max_seconds=0)


def test_a_wav_cut_short_is_refused_as_truncated(tmp_path):
    """libsndfile shortens its frame count to what a cut-off WAV holds, so the clip used to be embedded
    as a shorter one without a word; the header's own data size says what was promised."""
    whole = tmp_path / "whole.wav"
    sf.write(whole, sine(440, 16000, 2.0), 16000, subtype="PCM_16")  # 44-byte header + 64,000 bytes
    data = whole.read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(data[: 44 + 16000])  # the first 0.5 s of the 2 s the header announces
    assert sf.info(str(cut)).frames == 8000  # what libsndfile reports: no sign of a problem
    with pytest.raises(AudioError) as err:
        load_audio(cut, 16000)
    assert_names(err, cut, "truncated: the header announces 2.00 s of audio, the file holds 0.50 s")
    assert len(load_audio(whole, 16000)) == 32000
    # A streamed WAV (sizes left as the placeholder its writer uses: libsndfile/ffmpeg, arecord, sox, or
    # only the RIFF size) says nothing about its length: it is read as it is.
    for riff, size in [(b"\xff\xff\xff\xff", b"\xff\xff\xff\xff"), (b"\xff\xff\xff\x7f", b"\xff\xff\xff\x7f"),
                       (b"\x00\xf0\xff\x7f", b"\x00\xf0\xff\x7f"), (b"\x00\x00\x00\x00", data[40:44])]:
        streamed = tmp_path / "streamed.wav"
        streamed.write_bytes(data[:4] + riff + data[8:40] + size + data[44: 44 + 16000])
        assert len(load_audio(streamed, 16000)) == 8000, (riff, size)


@needs_mp3
def test_an_mp3_cut_short_is_refused_as_truncated(tmp_path):
    whole = tmp_path / "whole.mp3"
    sf.write(whole, sine(440, 48000, 2.0), 48000, format="MP3")
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(AudioError) as err:
        load_audio(cut, 48000)
    assert_names(err, cut, "truncated: the header announces 2.00 s of audio, decoding gave")


def test_the_clip_length_limit_is_bounded(tmp_path):
    assert check_max_seconds(MAX_SECONDS_LIMIT) == MAX_SECONDS_LIMIT and check_max_seconds(0.5) == 0.5
    for bad in (float("inf"), float("nan"), 0, -1, MAX_SECONDS_LIMIT + 1, True, "10", None):
        with pytest.raises(InputError, match="--max-seconds"):
            check_max_seconds(bad)
    path = tmp_path / "ok.wav"
    sf.write(path, sine(440, 8000, 0.1), 8000)
    with pytest.raises(ValueError):  # decoding without a bound was what `--max-seconds inf` asked for
        load_audio(path, 16000, max_seconds=float("inf"))


def test_many_channels_count_against_the_limit(tmp_path):
    """A second of 8 channels at 48 kHz holds the samples of 2 s of 96 kHz stereo: refused at a 1 s limit
    from the header, decoded at 2 s."""
    path = tmp_path / "octo.wav"
    sf.write(path, np.zeros((48000, 8), np.float32), 48000, subtype="PCM_16")
    with pytest.raises(AudioError) as err:
        load_audio(path, 48000, max_seconds=1)
    assert_names(err, path, "8 channels at 48000 Hz: more samples than 1 s of 96 kHz stereo")
    assert len(load_audio(path, 48000, max_seconds=2)) == 48000
