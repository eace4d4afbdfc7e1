"""Regenerate the bundled sample in data/sample/ (deterministic; ``--check`` compares instead of
writing)."""

from __future__ import annotations

import argparse
import gzip
import hashlib
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
DEFAULT_SOURCE = REPO.parent / "shared" / "data" / "goodbooks-10k"

# The exact generator calls the README quotes.
GOODBOOKS = {"n_ratings": 100_000, "n_users": 5_000, "n_books": 1_000, "seed": 42}
UCSD = {"n_interactions": 20_000, "seed": 42}


def _gzip(src: Path, dst: Path) -> None:
    """Gzip (or re-gzip) ``src`` into ``dst`` at level 9 with a zero timestamp: same text, same
    bytes."""
    data = src.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    dst.write_bytes(gzip.compress(data, compresslevel=9, mtime=0))


def build(source: Path, out: Path) -> dict[str, dict[str, int]]:
    """Write ``out/goodbooks`` and ``out/ucsd``; returns the generators' row counts."""
    sys.path.insert(0, str(REPO))
    from synth.goodbooks import generate_goodbooks
    from synth.ucsd import generate_ucsd

    counts = {}
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp)
        counts["goodbooks"] = generate_goodbooks(
            raw / "goodbooks",
            books_csv=source / "books.csv.gz",
            tags_csv=source / "tags.csv.gz",
            book_tags_csv=source / "book_tags_book_subset.csv.gz",
            progress=False,
            **GOODBOOKS,
        )
        counts["ucsd"] = generate_ucsd(raw / "ucsd", progress=False, **UCSD)
        for name in ("goodbooks", "ucsd"):
            (out / name).mkdir(parents=True, exist_ok=True)
            for f in sorted((raw / name).iterdir()):
                _gzip(f, out / name / (f.name if f.name.endswith(".gz") else f.name + ".gz"))
    return counts


def _digest(folder: Path) -> dict[str, str]:
    """sha256 of each file's uncompressed bytes (compressed bytes may differ between zlib
    builds)."""
    return {
        f.name: hashlib.sha256(gzip.decompress(f.read_bytes())).hexdigest()
        for f in sorted(folder.glob("*.gz"))
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--source",
        type=Path,
        default=DEFAULT_SOURCE,
        help="folder with the real goodbooks-10k files",
    )
    parser.add_argument(
        "--out", type=Path, default=HERE, help="where to write (default: this folder)"
    )
    parser.add_argument(
        "--check", action="store_true", help="regenerate in a temporary folder and compare"
    )
    args = parser.parse_args(argv)
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            build(args.source, Path(tmp))
            bad = [
                f"{name}/{file}"
                for name in ("goodbooks", "ucsd")
                for file, digest in _digest(Path(tmp) / name).items()
                if _digest(args.out / name).get(file) != digest
            ]
        print("sample differs: " + ", ".join(bad) if bad else "sample matches")
        return 1 if bad else 0
    counts = build(args.source, args.out)
    for name, rows in counts.items():
        print(name, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
