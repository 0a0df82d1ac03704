#!/usr/bin/env python3
"""Writes the fuzz targets' seed inputs (scripts/fuzz.sh) from the test fixtures, in the
layout the targets read (fuzz/src/lib.rs `parts`: each part but the last preceded by its
u32 little-endian length).  Usage: fuzz_seeds.py OUT_DIR"""
import gzip
import pathlib
import struct
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = pathlib.Path(sys.argv[1])


def parts(*ps):
    return b"".join(struct.pack("<I", len(p)) + p for p in ps[:-1]) + ps[-1]


def write(target, name, data):
    d = OUT / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


# model: every hub fixture small enough to mutate quickly, as a folder and as a bare file.
hubs = [ROOT / "models/default"] + sorted(p for p in (ROOT / "tests/fixtures").iterdir() if (p / "config.json").is_file())
for hub in hubs:
    st = (hub / "model.safetensors").read_bytes()
    if len(st) > 1_500_000:
        continue
    write("model", f"{hub.name}-hub", parts((hub / "config.json").read_bytes(), st))
    write("model", f"{hub.name}-bare", parts(b"", st))

# image: the fixture images and samples, under a few preprocessing picks.
images = sorted((ROOT / "tests/fixtures/images").iterdir()) + sorted((ROOT / "models/samples").glob("*.png"))[:3]
for img in images:
    for pick in (0, 9, 130):
        write("image", f"{img.name}-{pick}", bytes([pick]) + img.read_bytes())

# data: IDX (plain and gzipped), CIFAR-10 and CIFAR-100 records, an ImageFolder.
idx_images = bytes([0, 0, 8, 3]) + struct.pack(">III", 4, 5, 5) + bytes(range(100))
idx_labels = bytes([0, 0, 8, 1]) + struct.pack(">I", 4) + bytes([0, 3, 9, 1])
write("data", "idx", bytes([0]) + parts(idx_images, idx_labels))
write("data", "idx-gz", bytes([4]) + parts(gzip.compress(idx_images, mtime=0), gzip.compress(idx_labels, mtime=0)))
names10 = "\n".join(f"class{i}" for i in range(10)).encode()
names100 = "\n".join(f"c{i}" for i in range(100)).encode()
write("data", "cifar10", bytes([1]) + parts(bytes([3]) + bytes(3072) + bytes([7]) + bytes(range(256)) * 12, names10))
write("data", "cifar100", bytes([2]) + parts(bytes([1, 42]) + bytes(3072), names100))
pngs = [(ROOT / "tests/fixtures/images" / n).read_bytes() for n in ("gray.png", "small_odd.png", "rgba.png")]
write("data", "folder", bytes([3]) + parts(*pngs))

# checkpoint: a real one (a 1-epoch run of a 1-block ViT, fuzz/seeds/checkpoint), with and
# without the .previous-checkpoint copy.
ck = ROOT / "fuzz/seeds/checkpoint"
files = [(ck / f).read_bytes() for f in ("train_state.json", "config.json", "model.safetensors", "optimizer.safetensors")]
write("checkpoint", "tiny", bytes([0]) + parts(*files))
write("checkpoint", "tiny-previous", bytes([1]) + parts(*files))
