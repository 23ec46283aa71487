"""UNetBlockInspector and InspectingKSampler: look inside the UNet at one noise level, or across a sampling run.

Both watch the UNet through an ObserverPatch on a clone of the MODEL handle: the handle other nodes hold is
never changed, and the observer only reads, so what the UNet computes is bit-for-bit what it computes without
it. The pictures are made by latentloom.diffusion.inspect (pixels plus a display list); this module draws
their text and lines with PIL, labels tokens with the CLIP vocabulary, and saves every view to temp/ for the
canvas, next to the JSON report (``ui["inspection"]``).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import ImageDraw, ImageFont
from torch import Tensor

from latentloom import api
from latentloom.api import (
    ComboInput,
    FloatInput,
    Input,
    IntInput,
    NodeInputError,
    NodeResult,
    NodeSchema,
    NodeType,
    Output,
    StringInput,
)
from latentloom.diffusion.inspect import views
from latentloom.diffusion.inspect.architecture import BlockInfo, unet_architecture
from latentloom.diffusion.inspect.capture import CaptureOptions, InspectionObserver, PassCapture
from latentloom.diffusion.inspect.patch import ObserverPatch, patch_observer
from latentloom.diffusion.inspect.plots import line_plot
from latentloom.diffusion.inspect.probe import Probe, ProbeError, noise_level, probe
from latentloom.diffusion.inspect.report import (
    block_entropy,
    block_std_series,
    entropy_series,
    probe_report,
    token_series,
    trajectory_report,
)
from latentloom.diffusion.inspect.selection import RESOLUTIONS, SelectionError, select_blocks, select_size
from latentloom.diffusion.inspect.trajectory import StepCapture, TrajectoryRecorder, trajectory_options
from latentloom.diffusion.inspect.views import Picture
from latentloom.diffusion.noise import initial_noise
from latentloom.diffusion.schedulers import SCHEDULER_NAMES
from latentloom.diffusion.unet_call import UNetCall
from latentloom.runtime.clip_tokenizer import (
    BUNDLED_VOCAB_DIR,
    END_OF_WORD,
    ClipTokenizer,
    byte_to_unicode,
    read_vocab_files,
)
from latentloom.runtime.handles import ModelHandle
from latentloom.runtime.prompt_syntax import tokenize_prompt
from nodes.conds import to_conds
from nodes.image_files import image_to_pil
from nodes.images import ImageWriter
from nodes.sampling import MAX_SEED, MAX_STEPS, SamplingRequest, ksampler_inputs, model_handle, run_ksampler
from nodes.services import NodeServices
from nodes.vae_nodes import vae_handle
from nodes.values import latent_samples

T = api.types
VIEWS = ("overview", "feature maps: magnitude", "feature maps: PCA", "token heat maps", "statistics", "architecture")
DEFAULT_TOKENS = 8  # tokens shown when none are chosen: the prompt's first words (positions 1… without text)
PREVIEW_PREFIX = "LatentLoom_inspect"


# --- drawing ----------------------------------------------------------------------------------------------


def render(picture: Picture) -> Tensor:
    """The picture as an IMAGE batch of one (1, H, W, 3): pixels, then its lines, then its text."""
    image = image_to_pil(picture.pixels)
    draw = ImageDraw.Draw(image)
    for line in picture.lines:
        if len(line.points) > 1:
            draw.line(line.points, fill=line.color, width=line.width)
        for x, y in line.points if line.markers else ():
            r = line.width + 1
            draw.ellipse((x - r, y - r, x + r, y + r), fill=line.color)
    fonts: dict[int, Any] = {}
    for label in picture.labels:
        font = fonts.setdefault(label.size, ImageFont.load_default(size=label.size))
        draw.text((label.x, label.y), label.text, fill=label.color, font=font, anchor=label.anchor)
    return torch.from_numpy(np.asarray(image).copy()).float().div(255.0)[None]


# --- tokens -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PromptTokens:
    labels: dict[int, str]  # context position -> the token's text, for every position
    words: tuple[int, ...]  # positions of the prompt's own tokens (no start, end or padding)
    ids: tuple[int | None, ...]  # the token id at each position (None for an embedding vector)


class TokenText:
    """Token ids of SD1's CLIP vocabulary as text, and prompts as positions in the conditioning."""

    def __init__(self) -> None:
        vocab, _ = read_vocab_files(BUNDLED_VOCAB_DIR)
        self._pieces = {token: piece for piece, token in vocab.items()}
        self._to_byte = {char: byte for byte, char in byte_to_unicode().items()}
        self.tokenizer = ClipTokenizer.bundled()

    def text(self, token: int) -> str:
        """The token's text: its BPE piece mapped back to bytes, without the end-of-word mark."""
        piece = self._pieces.get(token)
        if piece is None:
            return f"#{token}"
        raw = bytes(self._to_byte.get(c, ord("?")) for c in piece.removesuffix(END_OF_WORD))
        return raw.decode("utf-8", errors="replace")

    def prompt(self, text: str, *, services: NodeServices, width: int) -> PromptTokens:
        tokenized = tokenize_prompt(text, self.tokenizer, embeddings=services.embeddings, embedding_width=width)
        labels, words, ids = {}, [], []
        bos, eos = self.tokenizer.bos_id, self.tokenizer.eos_id
        for chunk_index, chunk in enumerate(tokenized.chunks):
            ended = False
            for offset, weighted in enumerate(chunk):
                position, token = chunk_index * len(chunk) + offset, weighted.token
                ids.append(token if isinstance(token, int) else None)
                if not isinstance(token, int):
                    labels[position] = "<embedding>"
                    words.append(position)
                elif token == bos:
                    labels[position] = "<start>"
                elif token == eos:
                    labels[position], ended = ("<pad>" if ended else "<end>"), True
                else:
                    labels[position] = self.text(token)
                    words.append(position)
        return PromptTokens(labels, tuple(words), tuple(ids))

    def positions(self, request: str, prompt: PromptTokens | None, context_tokens: int) -> tuple[int, ...]:
        """Token positions named by ``request`` (comma-separated words of the prompt or position numbers);
        empty: the prompt's first words."""
        entries = [e.strip() for e in request.split(",") if e.strip()]
        if not entries:
            if prompt is None:
                return tuple(range(1, min(1 + DEFAULT_TOKENS, context_tokens)))
            return prompt.words[:DEFAULT_TOKENS]
        chosen: list[int] = []
        for entry in entries:
            chosen += [p for p in self._entry_positions(entry, prompt, context_tokens) if p not in chosen]
        return tuple(chosen)

    def _entry_positions(self, entry: str, prompt: PromptTokens | None, context_tokens: int) -> list[int]:
        if entry.isdigit():
            if int(entry) >= context_tokens:
                raise NodeInputError("tokens", f"position {entry} is past the conditioning's {context_tokens} tokens")
            return [int(entry)]
        if prompt is None:
            raise NodeInputError("tokens", f"choosing {entry!r} by its text needs the prompt in 'prompt_text'")
        wanted = self.tokenizer.encode(entry)
        found = [
            start + i
            for start in range(len(prompt.ids) - len(wanted) + 1)
            if wanted and list(prompt.ids[start : start + len(wanted)]) == wanted
            for i in range(len(wanted))
        ]
        if not found:
            raise NodeInputError("tokens", f"{entry!r} is not in the prompt")
        return found


# --- shared pieces of both nodes --------------------------------------------------------------------------


def _selection_inputs() -> tuple[Input, ...]:
    return (
        StringInput("blocks", default="all",
                    tooltip="Blocks to draw: 'all', names (input_blocks.4, middle_block), codes (IN04, M00, OUT11), "
                            "ranges (IN00-IN05) or stages (input, middle, output)."),  # fmt: skip
        StringInput("tokens", default="",
                    tooltip="Tokens whose attention to show: words of the prompt or positions, comma-separated; "
                            "empty for the first words."),  # fmt: skip
    )


def _optional_inputs() -> tuple[Input, ...]:
    return (
        Input("vae", T.VAE, tooltip="To draw heat maps over the decoded image instead of a latent preview."),
        StringInput("prompt_text", multiline=True,
                    tooltip="The positive prompt's text: labels the tokens and lets 'tokens' name words."),  # fmt: skip
    )


def _picture_background(latent: Tensor, vae: Any) -> Tensor:
    """(H, W, 3) in [0, 1]: the decoded latent (row 0) with a VAE, else a preview of its channels."""
    if vae is None:
        return views.latent_preview(latent[0].float().cpu())
    return vae_handle(vae).decode(latent[:1].float().cpu())[0, ..., :3]


def _save_views(writer: ImageWriter, pictures: Mapping[str, Tensor]) -> list[dict[str, Any]]:
    saved = []
    for name, image in pictures.items():
        result = writer.write(image, f"{PREVIEW_PREFIX}_{name.replace(' ', '_').replace(':', '')}",
                              prompt=None, extra_pnginfo=None)  # fmt: skip
        saved += [entry | {"view": name} for entry in (result.ui or {}).get("images", [])]
    return saved


def _model_and_latent(model: Any, latent: Any, latent_name: str) -> tuple[ModelHandle, Tensor]:
    """The MODEL handle and the LATENT's samples, checked to fit each other."""
    handle = model_handle(model)
    samples = latent_samples(latent, latent_name)
    if samples.shape[1] != handle.unet.config.in_channels:
        raise NodeInputError(latent_name, f"the latent has {samples.shape[1]} channels but the model takes "
                                          f"{handle.unet.config.in_channels}")  # fmt: skip
    return handle, samples


def _first_embedding(conditioning: Any, input_name: str, device: torch.device) -> Tensor:
    """The inspector looks at one prompt: the first entry's embedding (areas and masks do not apply)."""
    return to_conds(conditioning, input_name, device=device)[0].embedding


def _entries_used(**sides: Any) -> dict[str, Any]:
    return {side: {"entries": len(value), "used": 1} for side, value in sides.items() if value is not None}


def _blocks(text: str, architecture: Sequence[BlockInfo]) -> tuple[str, ...]:
    try:
        return select_blocks(text, architecture)
    except SelectionError as error:
        raise NodeInputError("blocks", str(error)) from error


class _Tokens:
    """The node's token vocabulary, read from disk the first time a node needs it."""

    @functools.cached_property
    def tokens(self) -> TokenText:
        return TokenText()

    def prompt_tokens(self, text: str, *, services: NodeServices, width: int, context_tokens: int) -> PromptTokens | None:
        if not text.strip():
            return None
        prompt = self.tokens.prompt(text, services=services, width=width)
        if len(prompt.ids) != context_tokens:
            raise NodeInputError("prompt_text", f"the text gives {len(prompt.ids)} token positions but the positive "
                                                f"conditioning has {context_tokens}: is it the same prompt?")  # fmt: skip
        return prompt


# --- UNetBlockInspector -----------------------------------------------------------------------------------


class UNetBlockInspector(_Tokens, NodeType):
    def __init__(self, services: NodeServices) -> None:
        self.services = services
        self.writer = ImageWriter(services.folders.temp_dir, "temp", compress_level=1)
        self.schema = NodeSchema(
            type="UNetBlockInspector",
            display_name="UNet Block Inspector",
            category="inspect",
            description="Runs the UNet once at a chosen noise level and shows what happens inside: the blocks, "
                        "their feature maps, and where each prompt token is attended to.",  # fmt: skip
            output_node=True,
            required=(
                Input("model", T.MODEL),
                Input("positive", T.CONDITIONING),
                Input("latent", T.LATENT, tooltip="The latent to look at, e.g. a KSampler's result or an empty latent."),
                IntInput("seed", default=0, min=0, max=MAX_SEED, tooltip="Seed of the noise added to the latent."),
                ComboInput("scheduler", choices=SCHEDULER_NAMES, default="normal"),
                IntInput("steps", default=20, min=1, max=MAX_STEPS),
                IntInput("step", default=10, min=0, max=MAX_STEPS - 1,
                         tooltip="Which step's noise level (0 = the noisiest) of 'steps' spaced by 'scheduler'."),  # fmt: skip
                FloatInput("sigma", default=0.0, min=0.0, max=1000.0, step=0.01,
                           tooltip="A noise level σ to use instead of the step (0 = use the step)."),  # fmt: skip
                *_selection_inputs(),
                ComboInput("resolution", choices=RESOLUTIONS, default="all",
                           tooltip="Heat maps from the cross-attention layers at this fraction of the latent size."),  # fmt: skip
                ComboInput("view", choices=VIEWS, default="overview", tooltip="Which picture the IMAGE output carries."),
            ),
            optional=(Input("negative", T.CONDITIONING), *_optional_inputs()),
            outputs=(Output(T.IMAGE, "view"),),
        )

    def execute(
        self, ctx: api.ExecutionContext, *, model: Any, positive: Any, latent: Any, seed: int, scheduler: str,
        steps: int, step: int, sigma: float, blocks: str, tokens: str, resolution: str, view: str,
        negative: Any = None, vae: Any = None, prompt_text: str = "",
    ) -> NodeResult:  # fmt: skip
        handle, samples = _model_and_latent(model, latent, "latent")
        device = handle.devices.device
        context = _first_embedding(positive, "positive", device)
        prompt = self.prompt_tokens(prompt_text, services=self.services, width=handle.unet.config.context_dim,
                                    context_tokens=context.shape[1])  # fmt: skip
        kept = self.tokens.positions(tokens, prompt, context.shape[1])
        latent_size = (samples.shape[2], samples.shape[3])
        architecture = unet_architecture(handle.unet, latent_size)
        chosen = _blocks(blocks, architecture)
        heat_size = _resolution(resolution, architecture, latent_size)
        try:
            level = noise_level(handle.schedule, sigma=sigma or None, scheduler=scheduler, steps=steps, step=step)
        except ProbeError as error:
            raise NodeInputError("sigma" if sigma else "step", str(error)) from error
        observer = InspectionObserver(CaptureOptions(map_blocks=frozenset(chosen), tokens=kept, rows=1))
        inspected = handle.clone_with_patch(ObserverPatch(observer, label="UNetBlockInspector"))
        result = probe(
            UNetCall(inspected.load(), observer=patch_observer(inspected.patches)), observer,
            schedule=handle.schedule, prediction=handle.prediction_type.value,
            latent=samples.to(device=device, dtype=torch.float32), noise=initial_noise(seed, samples.shape, device=device),
            level=level, positive=context, negative=None if negative is None else _first_embedding(negative, "negative", device),
        )  # fmt: skip
        labels = prompt.labels if prompt else {}
        background = _picture_background(samples if bool(samples.abs().amax() > 0) else result.denoised, vae)
        pictures = self._pictures(result, architecture, chosen, labels=labels, background=background, heat_size=heat_size)
        report = probe_report(result, architecture=architecture, tokens=labels, views=list(pictures))
        report["conditioning"] = _entries_used(positive=positive, negative=negative)
        images = {name: render(picture) for name, picture in pictures.items()}
        ui = {"inspection": [report], "images": _save_views(self.writer, images)}
        return NodeResult(outputs=(images[view],), ui=ui)

    def _pictures(
        self, result: Probe, architecture: Sequence[BlockInfo], chosen: Sequence[str], *, labels: Mapping[int, str],
        background: Tensor, heat_size: tuple[int, int] | None,
    ) -> dict[str, Picture]:  # fmt: skip
        capture = result.positive
        magnitude = {n: views.colorize(views.normalized(capture.blocks[n].magnitude[0])) for n in chosen}
        pca = {n: capture.blocks[n].pca[0] for n in chosen}
        pictures = {
            "feature maps: magnitude": views.u_grid(architecture, magnitude, title="Channel-mean |activation| per block"),
            "feature maps: PCA": views.u_grid(architecture, pca, title="Features, first three principal components as RGB"),
            "token heat maps": _heat_maps(capture, labels, background, size=heat_size),
            "statistics": _statistics_picture(result, architecture),
            "architecture": _architecture_picture(architecture),
        }
        return {"overview": views.stack(list(pictures.values()))} | pictures


def _resolution(choice: str, architecture: Sequence[BlockInfo], latent_size: tuple[int, int]) -> tuple[int, int] | None:
    """The query grid whose layers the heat maps average (None: all of them)."""
    sizes = sorted({site.size for block in architecture for site in block.cross_attention}, key=lambda s: -s[0] * s[1])
    try:
        return select_size(choice, sizes, latent_size)
    except SelectionError as error:
        raise NodeInputError("resolution", str(error)) from error


def _heat_maps(capture: PassCapture, labels: Mapping[int, str], background: Tensor, *, size: tuple[int, int] | None) -> Picture:
    maps = capture.combined_maps()[0] if size is None else capture.level_maps(size)[0]
    where = "all cross-attention layers" if size is None else f"the {capture.layers_at(size)} layers at {size[0]}x{size[1]}"
    tiles = [views.heat_overlay(background, views.normalized(m)) for m in maps]
    captions = [labels.get(p, f"#{p}") for p in capture.kept_tokens]
    title = f"Cross-attention per token, averaged over heads and {where}"
    return views.tile_sheet(tiles, captions, title=title, columns=5, tile=160)


def _statistics_picture(result: Probe, architecture: Sequence[BlockInfo]) -> Picture:
    names = {float(i): views.block_code(b) for i, b in enumerate(architecture)}
    attending = {x: name for x, name in names.items() if architecture[int(x)].cross_attention}
    sides = {"positive": result.positive, "negative": result.negative}
    std, entropy = {}, {}
    for side, capture in sides.items():
        if capture is not None:
            std[side] = [capture.blocks[b.name].statistics.std[0] for b in architecture]
            per_block = block_entropy(capture)
            entropy[side] = [per_block[architecture[int(x)].name] for x in attending]
    return views.stack([
        line_plot(list(names), std, title="Output std per block, in forward order", x_label="block",
                  y_label="std", x_names=names, width=max(640, 30 * len(names))),
        line_plot(list(attending), entropy, title="Cross-attention entropy / log(tokens) per block (0 = one token)",
                  x_label="block", y_label="normalised entropy", x_names=attending, width=max(640, 30 * len(names))),
    ])  # fmt: skip


def _architecture_picture(architecture: Sequence[BlockInfo]) -> Picture:
    header = ("block", "code", "modules", "channels in->out", "size", "params", "cross-attention", "skip")
    rows = [
        (
            b.name, views.block_code(b), " + ".join(b.modules), f"{b.in_channels}->{b.out_channels}",
            f"{b.size[0]}x{b.size[1]}", f"{b.parameters:,}",
            ", ".join(f"{s.heads} heads x {s.dim_head} at {s.size[0]}x{s.size[1]}" for s in b.cross_attention) or "-",
            (f"<- {b.skip_from}" if b.skip_from else f"-> {b.skip_to}") if (b.skip_from or b.skip_to) else "",
        )
        for b in architecture
    ]  # fmt: skip
    return views.table(header, rows, title="UNet architecture for this latent")


# --- InspectingKSampler -----------------------------------------------------------------------------------


class InspectingKSampler(_Tokens, NodeType):
    def __init__(self, services: NodeServices) -> None:
        self.services = services
        self.writer = ImageWriter(services.folders.temp_dir, "temp", compress_level=1)
        self.schema = NodeSchema(
            type="InspectingKSampler",
            display_name="KSampler (Inspecting)",
            category="inspect",
            description="A KSampler that also records, at every step, each block's statistics and where the "
                        "chosen tokens are attended to; plots them. Its latent equals KSampler's.",  # fmt: skip
            output_node=True,
            required=(
                *ksampler_inputs(),
                *_selection_inputs(),
            ),
            optional=_optional_inputs(),
            outputs=(Output(T.LATENT), Output(T.IMAGE, "plots")),
        )

    def execute(
        self, ctx: api.ExecutionContext, *, model: Any, seed: int, steps: int, cfg: float, sampler_name: str,
        scheduler: str, positive: Any, negative: Any, latent_image: Any, denoise: float, blocks: str, tokens: str,
        vae: Any = None, prompt_text: str = "",
    ) -> NodeResult:  # fmt: skip
        handle, samples = _model_and_latent(model, latent_image, "latent_image")
        context_tokens = _first_embedding(positive, "positive", torch.device("cpu")).shape[1]
        prompt = self.prompt_tokens(prompt_text, services=self.services, width=handle.unet.config.context_dim,
                                    context_tokens=context_tokens)  # fmt: skip
        kept = self.tokens.positions(tokens, prompt, context_tokens)
        architecture = unet_architecture(handle.unet, (samples.shape[2], samples.shape[3]))
        chosen = _blocks(blocks, architecture)
        settings = {"seed": seed, "steps": steps, "cfg": cfg, "sampler": sampler_name, "scheduler": scheduler,
                    "denoise": denoise, "tokens": list(kept)}  # fmt: skip
        # KSampler's own run on a clone of the model that an observer patch watches; the recorder keeps each
        # step's first UNet pass (guidance batches the positive side first: its first rows are the positive).
        observer = InspectionObserver(trajectory_options(tokens=kept, rows=samples.shape[0]))
        inspected = handle.clone_with_patch(ObserverPatch(observer, label="InspectingKSampler"))
        recorder = TrajectoryRecorder(observer, rows=samples.shape[0])
        request = SamplingRequest(seed=seed, steps=steps, cfg=cfg, sampler_name=sampler_name, scheduler=scheduler,
                                  denoise=denoise)  # fmt: skip
        result = run_ksampler(ctx, inspected, positive=positive, negative=negative, latent=latent_image,
                              request=request, previews=self.services.previews, watcher=recorder)  # fmt: skip
        recorder.finish()
        labels = prompt.labels if prompt else {}
        report = trajectory_report(recorder.steps, architecture=architecture, tokens=labels, settings=settings)
        background = _picture_background(result["samples"], vae)
        plots = render(_trajectory_picture(recorder.steps, architecture, chosen, labels, background))
        ui = {"inspection": [report], "images": _save_views(self.writer, {"trajectory": plots})}
        return NodeResult(outputs=(result, plots), ui=ui)


def _trajectory_picture(
    steps: Sequence[StepCapture], architecture: Sequence[BlockInfo], chosen: Sequence[str],
    labels: Mapping[int, str], background: Tensor,
) -> Picture:  # fmt: skip
    if not steps:
        return views.table(("",), [("the sampler ran no steps (denoise 0?)",)], title="Trajectory")
    xs = [float(s.step + 1) for s in steps]
    plotted = chosen if len(chosen) < len(architecture) else _representative(architecture)
    per_token = token_series(steps, labels)
    pictures = [
        line_plot(xs, block_std_series(steps, plotted), title="Block output std per step", x_label="step", y_label="std"),
        line_plot(xs, entropy_series(steps), title="Cross-attention entropy / log(tokens) per step",
                  x_label="step", y_label="normalised entropy"),  # fmt: skip
        line_plot(xs, {k: v["concentration"] for k, v in per_token.items()},
                  title="How concentrated each token's attention is (0 = spread, 1 = one spot)",
                  x_label="step", y_label="concentration"),  # fmt: skip
        line_plot(xs, {k: v["mass"] for k, v in per_token.items()}, title="Share of attention per token",
                  x_label="step", y_label="share"),  # fmt: skip
    ]
    if steps[0].capture.kept_tokens:
        first = steps[0].capture.kept_tokens[0]
        tiles = [views.heat_overlay(background, views.normalized(s.capture.combined_maps()[0, 0])) for s in steps]
        captions = [f"{s.step + 1}: sigma {s.sigma:.2f}" for s in steps]
        title = f"Attention to '{labels.get(first, f'#{first}')}' at each step (all layers, heads averaged)"
        pictures.append(views.tile_sheet(tiles, captions, title=title, columns=10, tile=96))
    return views.stack(pictures)


def _representative(architecture: Sequence[BlockInfo]) -> list[str]:
    """For a plot of every block: the first and last input block, the middle block and the last output block."""
    inputs = [b.name for b in architecture if b.stage == "input"]
    outputs = [b.name for b in architecture if b.stage == "output"]
    return [inputs[0], inputs[-1], "middle_block", outputs[-1]]
