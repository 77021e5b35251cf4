"""`akg dataset fetch`: the AKG and the SALT label mapping at pinned commits, sha256-checked.

Files land in DEST (default: the data folder of the settings, AKG_HOME/data or $AKG_DATA_DIR, so
every command finds them from any directory): the AKG's three TSV files at its root and SALT's
mapping under `label_sets/`. Each is written to a temporary name and renamed only after its
checksum matched, so a failed or interrupted fetch never leaves a wrong file in place.
`--from DIR` copies a local copy instead (checked the same way); AKG_DATASET_MIRROR replaces the
download host (a mirror, or a local server in tests).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from akg.config import Settings
from akg.errors import AkgError, InputError, IntegrityError

DEFAULT_HOST = "https://raw.githubusercontent.com"
AKG_REPO = "michelolzam/iknow-audio/2279a31e438cf3d3601ecb2f39966a90b6eb44b0/AKG_dataset"
SALT_REPO = "tpt-adasp/salt/e89d13b65f59bf621539faaf4dd3ad7ff81232c6/py-salt/assets"


@dataclass(frozen=True)
class DataFile:
    relpath: str      # where it goes under DEST
    remote: str       # repository/commit/path under the host
    sha256: str


MANIFEST: tuple[DataFile, ...] = (
    DataFile("AKG_pruned.tsv", f"{AKG_REPO}/AKG_pruned.tsv", "4081ed90ff62647658c8af47bbcb4d3095e1c0f245cb2912e90e5c6453f9298c"),
    DataFile("AKG_raw.tsv", f"{AKG_REPO}/AKG_raw.tsv", "c8da804219b94eae87d64890f6d71782cdaf1317cc068a2e8f35f28221482da3"),
    DataFile("AKG_test.tsv", f"{AKG_REPO}/AKG_test.tsv", "63f6ba4b8bd4ad1657860c8f66247203428ba9fa1b68088ea817f7d5fe1017b1"),
    DataFile("label_sets/salt_event_mapping.tsv", f"{SALT_REPO}/salt_event_mapping.tsv",
             "7b75ce63949afef979aebba5ef9fc4dc850a8a7ac1c32b5e0cccc425e58be165"),
    DataFile("label_sets/salt_event_roots.json", f"{SALT_REPO}/salt_event_roots.json",
             "89c85198a327d7eed86400d884fa3efe6551b2739dd3e9eee0bee035bd24a4f9"),
)


@dataclass(frozen=True)
class Fetched:
    path: Path
    action: str       # "present", "downloaded" or "copied"
    sha256: str


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _candidates(root: Path, item: DataFile) -> list[Path]:
    name = Path(item.relpath).name
    return [root / item.relpath, root / "AKG_dataset" / name, root / "label_sets" / name, root / name]


def _install(tmp: Path, target: Path, item: DataFile, origin: str) -> str:
    actual = sha256_of(tmp)
    if actual != item.sha256:
        tmp.unlink(missing_ok=True)
        raise IntegrityError(f"{origin}: sha256 {actual} does not match the pinned {item.sha256}; "
                             f"{target} was left untouched")
    tmp.replace(target)
    return actual


def fetch(dest: Path | None = None, *, from_dir: Path | None = None, mirror: str | None = None,
          timeout: float = 60.0, settings: Settings | None = None) -> list[Fetched]:
    """Install the pinned files into `dest` (default: the settings' data folder); see the module doc."""
    settings = settings or Settings.from_env()
    dest = Path(dest) if dest is not None else settings.data_dir
    host = (mirror or settings.dataset_mirror or DEFAULT_HOST).rstrip("/")
    if dest.exists() and not dest.is_dir():
        raise InputError("the destination is not a folder", file=str(dest))
    if from_dir is not None and not Path(from_dir).is_dir():
        raise InputError("the folder to copy from is not a folder", file=str(from_dir))
    done = []
    for item in MANIFEST:
        target = dest / item.relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists() and sha256_of(target) == item.sha256:
            done.append(Fetched(target, "present", item.sha256))
            continue
        tmp = target.with_name(f".{target.name}.{os.getpid()}.part")
        try:
            if from_dir is not None:
                source = next((p for p in _candidates(Path(from_dir), item) if p.is_file()), None)
                if source is None:
                    raise InputError(f"{Path(item.relpath).name} not found (looked in {from_dir} and its AKG_dataset/, label_sets/)",
                                     file=str(from_dir))
                shutil.copyfile(source, tmp)
                done.append(Fetched(target, "copied", _install(tmp, target, item, str(source))))
            else:
                url = f"{host}/{item.remote}"
                try:
                    with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as out:
                        shutil.copyfileobj(response, out)
                except (urllib.error.URLError, OSError) as e:
                    raise AkgError(f"downloading {url} failed: {e}; on a machine without network, "
                                   "use `akg dataset fetch --from DIR` with a local copy") from e
                done.append(Fetched(target, "downloaded", _install(tmp, target, item, url)))
        finally:
            tmp.unlink(missing_ok=True)
    return done


def installed(dest: Path | None = None, *, settings: Settings | None = None) -> dict[str, Path | None]:
    """Each pinned file's path under `dest` (default: the data folder), or None where it is missing."""
    dest = Path(dest) if dest is not None else (settings or Settings.from_env()).data_dir
    return {item.relpath: (dest / item.relpath if (dest / item.relpath).is_file() else None) for item in MANIFEST}
