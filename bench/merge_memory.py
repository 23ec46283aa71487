"""Peak memory of merging two full-size SD1.5 checkpoints (random weights, every key of a real file).

The promise (docs/lora-and-merging.md): a merge never holds more than the two inputs plus the result. Each
merge node's math (ModelMergeSimple, ModelMergeAdd, ModelMergeBlocks) runs in a fresh process that loads
both checkpoints, touches every weight once (so memory-mapped pages are counted), then

1. runs CheckpointSave on the merged model (merged tensors computed one at a time while writing), and
2. loads the merged UNet for sampling (``ModelHandle.load()``: every merged tensor at once),

recording the peak RSS above the process's size after imports after each step. The ratio is that peak over
the bytes of ONE loaded checkpoint: 2 inputs + the merged UNet is about 2.8 for SD1.5 (the UNet is 81% of it).

    .venv/bin/python bench/merge_memory.py                      # fp16 files, fp16 weights (about 6 GiB peak)
    .venv/bin/python bench/merge_memory.py --precision fp32     # fp32 weights (about 12 GiB peak)
    .venv/bin/python bench/merge_memory.py --files A B --json   # two existing checkpoints

Writing the two 2.1 GB files takes a minute or two on 2 cores; they go to a temporary folder that is removed
afterwards unless --keep is given.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MERGES = ("simple", "add", "blocks")


def current_rss() -> int:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


def peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def merged_model(merge_name: str, first: Any, second: Any) -> Any:
    """The merged MODEL, built as the node of that name builds it."""
    from latentloom.runtime import merge

    coefficient = {
        "simple": merge.simple(0.5),
        "add": merge.add(),
        "blocks": merge.block_ratios(input=0.25, middle=0.5, out=0.75),
    }[merge_name]
    return merge.merge_models(first, second, coefficient, label=merge_name)


def measure(merge_name: str, files: list[Path], precision: str | None, out_dir: Path) -> dict[str, Any]:
    """Runs in the child: load both checkpoints, save the merge, then load it for sampling."""
    from latentloom.runtime.clip_tokenizer import ClipTokenizer
    from latentloom.runtime.devices import DeviceManager
    from latentloom.runtime.loader import load_checkpoint
    from latentloom.runtime.lora.checkpoint_export import save_checkpoint

    devices = DeviceManager(device="cpu", precision=precision)
    tokenizer = ClipTokenizer.bundled()
    baseline = current_rss()
    first, second = (load_checkpoint(f, devices=devices, tokenizer=tokenizer) for f in files)
    (model1, clip1, vae1), (model2, clip2, vae2) = first, second
    for module in (model1.unet, clip1.encoder.model, vae1.vae, model2.unet, clip2.encoder.model, vae2.vae):
        for parameter in module.parameters():
            parameter.sum()  # page in memory-mapped weights so both whole checkpoints count
    checkpoint_bytes = sum(handle.__sizeof_cache__() for handle in (model1, clip1, vae1))
    inputs_peak = peak_rss()
    merged = merged_model(merge_name, model1, model2)

    start = time.perf_counter()
    path = save_checkpoint(out_dir, f"merge-{merge_name}", model=merged, clip=clip1, vae=vae1)
    save_seconds = time.perf_counter() - start
    save_peak = peak_rss()
    path.unlink()

    start = time.perf_counter()
    view = merged.load()
    load_seconds = time.perf_counter() - start
    load_peak = peak_rss()
    del view
    return {"merge": merge_name, "dtype": str(devices.dtype), "checkpoint_bytes": checkpoint_bytes,
            "unet_bytes": model1.__sizeof_cache__(), "baseline_rss": baseline, "inputs_peak": inputs_peak,
            "save_peak": save_peak, "save_seconds": save_seconds, "load_peak": load_peak,
            "load_seconds": load_seconds}  # fmt: skip


def run_child(merge_name: str, files: list[Path], precision: str | None, out_dir: Path) -> dict[str, Any]:
    command = [sys.executable, __file__, "--measure", merge_name, "--out", str(out_dir), "--files", *map(str, files)]
    if precision:
        command += ["--precision", precision]
    done = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads(done.stdout.strip().splitlines()[-1])


def write_checkpoints(folder: Path) -> list[Path]:
    sys.path.insert(0, str(ROOT / "tests"))
    from support.checkpoint_factory import write_full_size_sd15_checkpoint

    paths = []
    for seed in (0, 1):
        path = folder / f"sd15-random-{seed}.safetensors"
        start = time.perf_counter()
        write_full_size_sd15_checkpoint(path, seed=seed)
        print(f"wrote {path} ({path.stat().st_size / 1e9:.2f} GB) in {time.perf_counter() - start:.0f} s", file=sys.stderr)
        paths.append(path)
    return paths


def report(rows: list[dict[str, Any]]) -> None:
    gib = 1024**3
    first = rows[0]
    print(f"one checkpoint: {first['checkpoint_bytes'] / gib:.2f} GiB as {first['dtype']} "
          f"(UNet {first['unet_bytes'] / gib:.2f} GiB); peaks are RSS above the size after imports, "
          "as multiples of one checkpoint")  # fmt: skip
    print(f"{'merge':8} {'inputs':>7} {'save peak':>10} {'save s':>7} {'load peak':>10} {'load s':>7}")
    for row in rows:
        size, base = row["checkpoint_bytes"], row["baseline_rss"]
        print(
            f"{row['merge']:8} {(row['inputs_peak'] - base) / size:7.2f} {(row['save_peak'] - base) / size:10.2f}"
            f" {row['save_seconds']:7.1f} {(row['load_peak'] - base) / size:10.2f} {row['load_seconds']:7.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=Path, nargs=2, help="two existing SD1 checkpoints (default: write random ones)")
    parser.add_argument("--precision", choices=("fp32", "fp16", "bf16"), default="fp16", help="compute dtype")
    parser.add_argument("--merges", nargs="+", choices=MERGES, default=list(MERGES))
    parser.add_argument("--keep", action="store_true", help="keep the written checkpoints")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--measure", choices=MERGES, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.measure:
        print(json.dumps(measure(args.measure, args.files, args.precision, args.out)))
        return

    folder = Path(tempfile.mkdtemp(prefix="latentloom-merge-bench-"))
    files = args.files or write_checkpoints(folder)
    try:
        rows = [run_child(name, files, args.precision, folder) for name in args.merges]
    finally:
        if args.files is None and not args.keep:
            for path in files:
                path.unlink(missing_ok=True)
        if not any(folder.iterdir()):
            folder.rmdir()
    if args.json:
        print(json.dumps({"files": [str(f) for f in files], "rows": rows}, indent=1))
    else:
        report(rows)


if __name__ == "__main__":
    main()
