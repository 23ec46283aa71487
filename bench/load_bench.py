"""Peak memory and time of loading a full-size SD1.5 checkpoint (random weights, every key of a real file).

Each measurement runs in a fresh process, so the peak RSS it reports belongs to that load alone; the
process's resident size after imports is subtracted, and the rest is compared with the bytes of the
loaded weights. A ratio near 1.0 means RAM held the weights once; loading the whole file and then
converting it (the naive way, measured for comparison) peaks near (file + converted) / converted.

    .venv/bin/python bench/load_bench.py                          # fp16 file -> fp32 weights (CPU default)
    .venv/bin/python bench/load_bench.py --file-dtype fp32        # fp32 file -> fp32 weights (memory-mapped)
    .venv/bin/python bench/load_bench.py --file PATH --json       # an existing checkpoint

Writing the 2.1 GB (fp16) or 4.3 GB (fp32) file takes a minute on 2 cores; it goes to a temporary folder
that is removed afterwards unless --keep is given.
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
FILE_DTYPES = ("fp16", "fp32")


def current_rss() -> int:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


def peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def measure_loader(path: Path, precision: str | None) -> dict[str, Any]:
    """Runs in the child: LatentLoom's load_checkpoint."""
    from latentloom.runtime.clip_tokenizer import ClipTokenizer
    from latentloom.runtime.devices import DeviceManager
    from latentloom.runtime.loader import load_checkpoint

    devices = DeviceManager(device="cpu", precision=precision)
    tokenizer = ClipTokenizer.bundled()
    baseline = current_rss()
    start = time.perf_counter()
    handles = load_checkpoint(path, devices=devices, tokenizer=tokenizer)
    seconds = time.perf_counter() - start
    weights = sum(handle.__sizeof_cache__() for handle in handles)
    peak_after_load = peak_rss()
    # Memory-mapped weights are paged in on first use: read every byte once to count them fully.
    model, clip, vae = handles
    for module in (model.unet, clip.encoder.model, vae.vae):
        for parameter in module.parameters():
            parameter.sum()
    return {"method": "latentloom", "dtype": str(devices.dtype), "seconds": seconds, "weights_bytes": weights,
            "baseline_rss": baseline, "peak_rss_after_load": peak_after_load, "peak_rss": peak_rss(),
            "rss_after": current_rss()}


def measure_naive(path: Path, precision: str | None) -> dict[str, Any]:
    """Runs in the child: read the whole file, then convert every tensor (what the loader avoids)."""
    import torch
    from safetensors.torch import load_file

    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision or "fp32", torch.float32)
    baseline = current_rss()
    start = time.perf_counter()
    raw = load_file(str(path))
    converted = {k: v.to(dtype) if v.is_floating_point() else v for k, v in raw.items()}
    seconds = time.perf_counter() - start
    weights = sum(t.numel() * t.element_size() for t in converted.values())
    for tensor in converted.values():
        tensor.sum()
    return {"method": "naive load_file + convert", "dtype": str(dtype), "seconds": seconds, "weights_bytes": weights,
            "baseline_rss": baseline, "peak_rss": peak_rss(), "rss_after": current_rss()}


def run_child(path: Path, method: str, precision: str | None) -> dict[str, Any]:
    command = [sys.executable, __file__, "--measure", method, "--file", str(path)]
    if precision:
        command += ["--precision", precision]
    done = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads(done.stdout.strip().splitlines()[-1])


def write_checkpoint(folder: Path, file_dtype: str) -> Path:
    sys.path.insert(0, str(ROOT / "tests"))
    import torch
    from support.checkpoint_factory import write_full_size_sd15_checkpoint

    path = folder / f"sd15-random-{file_dtype}.safetensors"
    dtype = torch.float16 if file_dtype == "fp16" else torch.float32
    start = time.perf_counter()
    write_full_size_sd15_checkpoint(path, dtype=dtype)
    print(f"wrote {path} ({path.stat().st_size / 1e9:.2f} GB) in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    return path


def report(rows: list[dict[str, Any]], *, file: Path, file_bytes: int) -> None:
    gib = 1024**3
    print(f"file: {file} ({file_bytes / gib:.2f} GiB)")
    print("peak - base: the peak RSS of the loading process above its size after imports, after every")
    print("weight was read once (memory-mapped pages count once they are touched)")
    print(f"{'method':28} {'dtype':15} {'load s':>7} {'weights GiB':>12} {'peak - base GiB':>16} {'ratio':>6}")
    for row in rows:
        extra = row["peak_rss"] - row["baseline_rss"]
        print(
            f"{row['method']:28} {row['dtype']:15} {row['seconds']:7.1f} {row['weights_bytes'] / gib:12.2f}"
            f" {extra / gib:16.2f} {extra / row['weights_bytes']:6.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--file", type=Path, help="an existing checkpoint (default: write a random full-size one)")
    parser.add_argument("--file-dtype", choices=FILE_DTYPES, default="fp16")
    parser.add_argument("--precision", choices=("fp32", "fp16", "bf16"), help="compute dtype (default: CPU's fp32)")
    parser.add_argument("--skip-naive", action="store_true", help="do not measure the naive load for comparison")
    parser.add_argument("--keep", action="store_true", help="keep the written checkpoint")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--measure", choices=("latentloom", "naive"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.measure:
        measure = measure_loader if args.measure == "latentloom" else measure_naive
        print(json.dumps(measure(args.file, args.precision)))
        return

    folder = Path(tempfile.mkdtemp(prefix="latentloom-load-bench-"))
    path = args.file or write_checkpoint(folder, args.file_dtype)
    file_bytes = path.stat().st_size
    try:
        rows = [run_child(path, "latentloom", args.precision)]
        if not args.skip_naive:
            rows.append(run_child(path, "naive", args.precision))
    finally:
        if args.file is None and not args.keep:
            path.unlink(missing_ok=True)
        if not any(folder.iterdir()):
            folder.rmdir()
    if args.json:
        print(json.dumps({"file": str(path), "file_bytes": file_bytes, "rows": rows}, indent=1))
    else:
        report(rows, file=path, file_bytes=file_bytes)


if __name__ == "__main__":
    main()
