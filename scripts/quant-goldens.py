#!/usr/bin/python3
"""quant-goldens.py: writes wasm/quant/testdata/goldens.json, the values that
llama.cpp's own Python package (gguf-py, from the llama.cpp source that the
npm package node-llama-cpp carries) decodes from seeded random blocks of each
supported type. wasm/quant's tests decode the same blocks and must agree, so
our block layouts are checked against llama.cpp's and not only against our own
quantizer.

Developers run it (it needs Debian's python3-numpy); the output is committed:

    /usr/bin/python3 scripts/quant-goldens.py LLAMA_CPP_SOURCE_DIR
"""
import json, random, struct, sys
import numpy as np

sys.path.insert(0, sys.argv[1] + "/gguf-py")
from gguf.quants import dequantize  # noqa: E402
from gguf.constants import GGMLQuantizationType as T, GGML_QUANT_SIZES  # noqa: E402

# Byte ranges of each type's f16 scale fields, which must hold finite values.
F16_FIELDS = {
    "Q4_0": [0], "Q4_1": [0, 2], "Q5_0": [0], "Q5_1": [0, 2], "Q8_0": [0],
    "Q2_K": [80, 82], "Q3_K": [108], "Q4_K": [0, 2], "Q5_K": [0, 2], "Q6_K": [208],
    "F16": [0],
}

rng = random.Random(20261125)
out = {}
for name in ["F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"]:
    qt = T[name]
    block_size, type_size = GGML_QUANT_SIZES[qt]
    blocks = []
    for _ in range(max(4, 256 // block_size)):
        b = bytearray(rng.getrandbits(8) for _ in range(type_size))
        for off in F16_FIELDS.get(name, []):
            b[off:off + 2] = struct.pack("<e", rng.uniform(-2.0, 2.0))
        if name == "BF16":
            b[0:2] = struct.pack("<I", struct.unpack("<I", struct.pack("<f", rng.uniform(-4, 4)))[0])[2:4]
        blocks.append(bytes(b))
    raw = b"".join(blocks)
    values = dequantize(np.frombuffer(raw, dtype=np.uint8), qt).astype(np.float32).reshape(-1)
    out[name] = {"blocks": raw.hex(), "values": [float(v) for v in values]}

json.dump(out, sys.stdout, indent=None, separators=(",", ":"))
