"""Sampling speed and memory of full-size SD1.5 (random weights, every key of a real file), LatentLoom's
KSampler node side by side with diffusers' StableDiffusionPipeline built from the same weights.

A sampling step is one UNet call on a batch of 2 (classifier-free guidance: cond + uncond). Each
(implementation, resolution) runs in a fresh process: it loads the checkpoint, runs a short warm-up, resets
the memory peaks, then samples with Euler; the per-step times come from the step callbacks (the first step
is left out of the median). Memory on the CPU is the process's peak RSS (VmHWM, psutil is not needed);
on CUDA the peak of torch's allocator.

    .venv/bin/python bench/sd_bench.py                     # CPU: 256² and 512², 4 steps, fp32
    .venv/bin/python bench/sd_bench.py --device cuda       # CUDA: fp16, 512², 20 steps (it/s, peak VRAM)
    .venv/bin/python bench/sd_bench.py --file X.safetensors --sizes 512 --steps 10 --json

diffusers' side: its own single-file conversion functions turn the checkpoint's UNet and VAE into
UNet2DConditionModel / AutoencoderKL; the text encoder is transformers' CLIPTextModel with the same weights;
EulerDiscreteScheduler. ``--skip-diffusers`` measures LatentLoom alone.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PROMPT = "a photograph of an astronaut riding a horse"
NEGATIVE = "blurry, low quality"
CFG = 7.5
WARMUP_STEPS = 2


# --- memory --------------------------------------------------------------------------------------------


def _status_kib(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def peak_rss() -> int:
    """Peak resident memory of this process in bytes (psutil when installed, else VmHWM)."""
    try:
        import psutil

        info = psutil.Process().memory_full_info()
        return int(getattr(info, "peak_wset", 0) or _status_kib("VmHWM") * 1024)
    except ImportError:
        return _status_kib("VmHWM") * 1024


def reset_peak_rss() -> bool:
    """Start the peak RSS over from the current size (Linux: clear_refs 5); False where that is refused."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


class Meter:
    """Per-step timestamps and memory peaks on one device."""

    def __init__(self, device: str) -> None:
        import torch

        self.torch = torch
        self.cuda = device.startswith("cuda")
        self.stamps: list[float] = []

    def now(self) -> float:
        if self.cuda:
            self.torch.cuda.synchronize()
        return time.perf_counter()

    def start(self) -> None:
        if self.cuda:
            self.torch.cuda.empty_cache()
            self.torch.cuda.reset_peak_memory_stats()
        self.reset_rss = reset_peak_rss()
        self.stamps = [self.now()]

    def step(self) -> None:
        self.stamps.append(self.now())

    def result(self) -> dict[str, Any]:
        intervals = [b - a for a, b in zip(self.stamps, self.stamps[1:], strict=False)]
        steady = intervals[1:] or intervals
        total = self.stamps[-1] - self.stamps[0]
        out = {
            "steps": len(intervals),
            "seconds_per_step": statistics.median(steady),
            "seconds_total": total,
            "it_per_s": len(intervals) / total,
            "peak_rss": peak_rss(),
            "peak_rss_is_sampling_only": self.reset_rss,
        }
        if self.cuda:
            out["peak_vram_allocated"] = self.torch.cuda.max_memory_allocated()
            out["peak_vram_reserved"] = self.torch.cuda.max_memory_reserved()
        return out


# --- the two implementations (each runs in its own child process) --------------------------------------


class StepContext:
    """The ExecutionContext the KSampler node reports its steps to."""

    prompt_id = "bench"
    node_id = "3"

    def __init__(self, on_step: Callable[[], None]) -> None:
        self.on_step = on_step

    def progress(self, value: float, total: float, *, preview: Any = None) -> None:
        self.on_step()

    def check_interrupted(self) -> None:
        return None


def measure_latentloom(path: Path, *, device: str, precision: str | None, size: int, steps: int) -> dict[str, Any]:
    import torch

    from latentloom.runtime.devices import DeviceManager
    from latentloom.runtime.loader import load_checkpoint
    from nodes.sampling import KSampler

    devices = DeviceManager(device=device, precision=precision)
    started = time.perf_counter()
    model, clip, _ = load_checkpoint(path, devices=devices)
    load_seconds = time.perf_counter() - started
    positive = [[clip.encode(PROMPT)[0], {}]]
    negative = [[clip.encode(NEGATIVE)[0], {}]]
    latent = {"samples": torch.zeros(1, 4, size // 8, size // 8)}
    meter = Meter(str(devices.device))
    sampler = KSampler()

    def sample(count: int) -> None:
        sampler.execute(StepContext(meter.step), model=model, seed=0, steps=count, cfg=CFG, sampler_name="euler",
                        scheduler="normal", positive=positive, negative=negative, latent_image=latent, denoise=1.0)  # fmt: skip

    sample(WARMUP_STEPS)
    meter.start()
    sample(steps)
    return {"implementation": "latentloom", "dtype": str(devices.dtype), "load_seconds": load_seconds, **meter.result()}


def measure_diffusers(path: Path, *, device: str, precision: str | None, size: int, steps: int) -> dict[str, Any]:
    import torch

    started = time.perf_counter()
    pipe = diffusers_pipeline(path)
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision or "", torch.float32)
    pipe = pipe.to(device=device, dtype=dtype)
    load_seconds = time.perf_counter() - started
    meter = Meter(device)

    def on_step_end(_pipe: Any, _step: int, _timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        meter.step()
        return tensors

    def sample(count: int) -> None:
        generator = torch.Generator("cpu").manual_seed(0)
        with torch.inference_mode():
            pipe(PROMPT, negative_prompt=NEGATIVE, height=size, width=size, num_inference_steps=count,
                 guidance_scale=CFG, generator=generator, output_type="latent", callback_on_step_end=on_step_end)  # fmt: skip

    sample(WARMUP_STEPS)
    meter.start()
    sample(steps)
    return {"implementation": "diffusers", "dtype": str(dtype), "load_seconds": load_seconds, **meter.result()}


def diffusers_pipeline(path: Path) -> Any:
    """StableDiffusionPipeline over the checkpoint's weights, converted by diffusers' single-file functions."""
    sys.path.insert(0, str(ROOT / "tests"))
    from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline
    from safetensors.torch import load_file
    from support.diffusers_reference import diffusers_unet, diffusers_vae
    from transformers import CLIPTokenizer

    from latentloom.diffusion.unet_config import UNetConfig
    from latentloom.diffusion.vae import VAEConfig
    from latentloom.runtime.clip_text import ClipTextEncoder
    from latentloom.runtime.detect import TEXT_ENCODER_PREFIX, UNET_PREFIX, VAE_PREFIX

    state = load_file(str(path))
    unet = diffusers_unet(UNetConfig(), _part(state, UNET_PREFIX))
    vae = diffusers_vae(VAEConfig(), _part(state, VAE_PREFIX))
    # transformers' CLIPTextModel holding the same text weights (our loader builds exactly that model).
    text_encoder = ClipTextEncoder.from_state_dict(_part(state, TEXT_ENCODER_PREFIX)).model
    del state
    vocab = ROOT / "latentloom" / "runtime" / "data" / "clip"
    tokenizer = CLIPTokenizer(vocab_file=str(vocab / "vocab.json"), merges_file=str(vocab / "merges.txt"), model_max_length=77)
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                       timestep_spacing="leading", steps_offset=1)  # fmt: skip
    return StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)  # fmt: skip


def _part(state: dict[str, Any], prefix: str) -> dict[str, Any]:
    """The tensors under ``prefix``, prefix removed, in the file's dtype (the models' float32 parameters
    convert them as they load)."""
    return {key[len(prefix) :]: value for key, value in state.items() if key.startswith(prefix)}


MEASURES = {"latentloom": measure_latentloom, "diffusers": measure_diffusers}


# --- the parent: children, checkpoint, report -----------------------------------------------------------


def run_child(implementation: str, path: Path, *, device: str, precision: str | None, size: int, steps: int) -> dict:
    command = [sys.executable, __file__, "--measure", implementation, "--file", str(path), "--device", device,
               "--sizes", str(size), "--steps", str(steps)]  # fmt: skip
    if precision:
        command += ["--precision", precision]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"{implementation} at {size}² failed:\n{done.stderr[-4000:]}")
    return {"size": size, **json.loads(done.stdout.strip().splitlines()[-1])}


def write_checkpoint(folder: Path) -> Path:
    sys.path.insert(0, str(ROOT / "tests"))
    import torch
    from support.checkpoint_factory import write_full_size_sd15_checkpoint

    path = folder / "sd15-random-fp16.safetensors"
    started = time.perf_counter()
    write_full_size_sd15_checkpoint(path, dtype=torch.float16)
    print(f"wrote {path} ({path.stat().st_size / 1e9:.2f} GB) in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return path


def machine() -> str:
    import platform

    import torch

    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as cpuinfo:
            name = next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    described = f"{name}, {torch.get_num_threads()} torch threads, torch {torch.__version__}"
    if torch.cuda.is_available():
        described += f", {torch.cuda.get_device_name()}"
    return described


def report(rows: list[dict[str, Any]], *, cuda: bool) -> None:
    gib = 1024**3
    memory = "peak VRAM GiB" if cuda else "peak RSS GiB"
    print(f"{'implementation':14} {'size':>5} {'dtype':14} {'steps':>5} {'s/step':>8} {'it/s':>6} {memory:>14} {'load s':>7}")
    for row in rows:
        peak = row["peak_vram_allocated"] if cuda else row["peak_rss"]
        print(f"{row['implementation']:14} {row['size']:5} {row['dtype']:14} {row['steps']:5} "
              f"{row['seconds_per_step']:8.3f} {row['it_per_s']:6.2f} {peak / gib:14.2f} {row['load_seconds']:7.1f}")  # fmt: skip
    if not cuda and rows and rows[0]["peak_rss_is_sampling_only"]:
        print("peak RSS: during sampling (reset after loading), weights included")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--file", type=Path, help="an existing SD1.5 checkpoint (default: write a random one)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--precision", choices=("fp32", "fp16", "bf16"), help="default: fp32 on CPU, fp16 on CUDA")
    parser.add_argument("--sizes", type=int, nargs="+", help="image sizes (default: 256 512 on CPU, 512 on CUDA)")
    parser.add_argument("--steps", type=int, help="sampling steps measured (default: 4 on CPU, 20 on CUDA)")
    parser.add_argument("--skip-diffusers", action="store_true", help="measure LatentLoom only")
    parser.add_argument("--keep", action="store_true", help="keep the written checkpoint")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--measure", choices=tuple(MEASURES), help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    cuda = args.device.startswith("cuda")
    precision = args.precision or ("fp16" if cuda else None)
    sizes = args.sizes or ([512] if cuda else [256, 512])
    steps = args.steps or (20 if cuda else 4)
    if args.measure:
        sys.path.insert(0, str(ROOT))
        measure = MEASURES[args.measure]
        print(json.dumps(measure(args.file, device=args.device, precision=precision, size=sizes[0], steps=steps)))
        return
    folder = Path(tempfile.mkdtemp(prefix="latentloom-sd-bench-"))
    path = args.file or write_checkpoint(folder)
    implementations = ["latentloom"] if args.skip_diffusers else ["latentloom", "diffusers"]
    try:
        rows = [run_child(impl, path, device=args.device, precision=precision, size=size, steps=steps)
                for size in sizes for impl in implementations]  # fmt: skip
    finally:
        if args.file is None and not args.keep:
            path.unlink(missing_ok=True)
            folder.rmdir()
    if args.json:
        print(json.dumps({"machine": machine(), "rows": rows}, indent=1))
    else:
        print(f"machine: {machine()}")
        report(rows, cuda=cuda)


if __name__ == "__main__":
    main()
