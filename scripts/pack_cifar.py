"""Carries CIFAR-10 to a machine with no tfds folder and no network (a lent GPU).

  python scripts/pack_cifar.py pack --out .gpu --part-mb 50      # here: lossless WebP parts
  python scripts/pack_cifar.py unpack .gpu/*.npz --out /tmp/cifar  # there: train.npz, test.npz
  DEATTACK_CIFAR_ARRAYS=/tmp/cifar deattack ...                    # reads those (deattack.data)

The raw splits are 184 MB; lossless WebP (method 2) makes them ~105 MB, so they fit a
transfer limit in a few parts. Each part holds a slice of one split: the encoded images
back to back, their offsets, labels, and the SHA-256 of the whole split's raw pixels, which
`unpack` checks once all of a split's parts are decoded (nothing lossy gets through).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def _encode(image: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="WEBP", lossless=True, quality=100, method=2)
    return buffer.getvalue()


def _decode(blob: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(blob)).convert("RGB"), dtype=np.uint8)


def _map(function, items, workers: int | None) -> list:
    """In this process for one worker; else a pool of fresh interpreters ("spawn": forking
    a process that has imported JAX can deadlock)."""
    if workers == 1:
        return [function(item) for item in items]
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(pool.map(function, items, chunksize=256))


def pack(out: Path, part_bytes: int, workers: int) -> None:
    from deattack import data

    out.mkdir(parents=True, exist_ok=True)
    names = np.asarray(data.class_names())
    for split in data.SPLITS:
        images, labels = data.load_split(split)
        digest = hashlib.sha256(np.ascontiguousarray(images).tobytes()).hexdigest()
        blobs = _map(_encode, list(images), workers)
        start, part = 0, 0
        while start < len(blobs):
            stop, size = start, 0
            while stop < len(blobs) and (stop == start or size + len(blobs[stop]) <= part_bytes):
                size += len(blobs[stop])
                stop += 1
            offsets = np.cumsum([0] + [len(b) for b in blobs[start:stop]]).astype(np.int64)
            path = out / f"cifar10-{split}-{part:02d}.npz"
            np.savez(path, split=split, start=start, total=len(images), sha256=digest, class_names=names,
                     blob=np.frombuffer(b"".join(blobs[start:stop]), np.uint8), offsets=offsets,
                     labels=np.asarray(labels[start:stop], np.int32))
            print(f"{path}: images {start}..{stop - 1} of {len(images)}, {path.stat().st_size / 1e6:.1f} MB")
            start, part = stop, part + 1


def unpack(parts: list[Path], out: Path, workers: int) -> None:
    by_split: dict[str, list] = {}
    for path in parts:
        with np.load(path, allow_pickle=False) as part:
            by_split.setdefault(str(part["split"]), []).append({key: part[key] for key in part.files})
    out.mkdir(parents=True, exist_ok=True)
    for split, pieces in by_split.items():
        pieces.sort(key=lambda piece: int(piece["start"]))
        total = int(pieces[0]["total"])
        images = np.zeros((total, 32, 32, 3), np.uint8)
        labels = np.full(total, -1, np.int32)
        for piece in pieces:
            blob, offsets, start = piece["blob"].tobytes(), piece["offsets"], int(piece["start"])
            chunks = [blob[offsets[i]:offsets[i + 1]] for i in range(len(offsets) - 1)]
            images[start:start + len(chunks)] = np.stack(_map(_decode, chunks, workers))
            labels[start:start + len(chunks)] = piece["labels"]
        if (labels < 0).any():
            raise SystemExit(f"{split}: parts cover {int((labels >= 0).sum())} of {total} images; pass every part")
        digest = hashlib.sha256(images.tobytes()).hexdigest()
        if digest != str(pieces[0]["sha256"]):
            raise SystemExit(f"{split}: decoded pixels do not match the packed SHA-256 (corrupt part?)")
        np.savez(out / f"{split}.npz", images=images, labels=labels, class_names=pieces[0]["class_names"])
        print(f"{out / f'{split}.npz'}: {total} images, SHA-256 verified")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    packing = commands.add_parser("pack")
    packing.add_argument("--out", type=Path, required=True)
    packing.add_argument("--part-mb", type=float, default=50.0)
    unpacking = commands.add_parser("unpack")
    unpacking.add_argument("parts", type=Path, nargs="+")
    unpacking.add_argument("--out", type=Path, required=True)
    for command in (packing, unpacking):
        command.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    if args.command == "pack":
        pack(args.out, int(args.part_mb * 1e6), args.workers)
    else:
        unpack(args.parts, args.out, args.workers)


if __name__ == "__main__":
    main()
