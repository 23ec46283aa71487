"""Model folders: listing, safe name resolution, and extra folders from ComfyUI / AUTOMATIC1111 layouts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from latentloom.runtime.folders import (
    ModelFolderError,
    ModelFolders,
    ModelNotFoundError,
    read_extra_model_paths,
)


def touch(path: Path, content: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


@pytest.fixture
def base(tmp_path: Path) -> Path:
    root = tmp_path / "install"
    touch(root / "models/checkpoints/b.safetensors")
    touch(root / "models/checkpoints/a.ckpt")
    touch(root / "models/checkpoints/sd15/realistic.safetensors")
    touch(root / "models/checkpoints/notes.txt")
    touch(root / "models/checkpoints/.hidden.safetensors")
    touch(root / "models/loras/style.pt")
    touch(root / "models/embeddings/neg/bad-hands.pt")
    touch(root / "models/embeddings/easy.bin")
    touch(root / "models/vae/vae-ft-mse.pth")
    return root


def test_lists_model_files_sorted_with_subfolders_and_model_extensions_only(base: Path) -> None:
    folders = ModelFolders(base)
    assert folders.list("checkpoints") == ["a.ckpt", "b.safetensors", "sd15/realistic.safetensors"]
    assert folders.list("embeddings") == ["easy.bin", "neg/bad-hands.pt"]
    assert folders.list("loras") == ["style.pt"]
    assert folders.list("vae") == ["vae-ft-mse.pth"]


def test_listing_follows_the_folder_without_a_restart(base: Path) -> None:
    folders = ModelFolders(base)
    assert "new.safetensors" not in folders.list("checkpoints")
    touch(base / "models/checkpoints/new.safetensors")
    (base / "models/checkpoints/a.ckpt").unlink()
    assert folders.list("checkpoints") == ["b.safetensors", "new.safetensors", "sd15/realistic.safetensors"]


def test_missing_folders_list_nothing(tmp_path: Path) -> None:
    folders = ModelFolders(tmp_path / "empty")
    assert folders.list("checkpoints") == []
    assert folders.list("input") == []


def test_data_folders_list_every_file(base: Path) -> None:
    folders = ModelFolders(base)
    touch(folders.input_dir / "photo.png")
    touch(folders.input_dir / "clipspace/mask.png")
    assert folders.input_dir == base.resolve() / "input"
    assert folders.output_dir == base.resolve() / "output"
    assert folders.temp_dir == base.resolve() / "temp"
    assert folders.list("input") == ["clipspace/mask.png", "photo.png"]
    assert folders.list("input", extensions={".png"}) == ["clipspace/mask.png", "photo.png"]


def test_create_default_dirs_makes_the_base_layout(tmp_path: Path) -> None:
    folders = ModelFolders(tmp_path / "fresh")
    folders.create_default_dirs()
    made = sorted(str(p.relative_to(tmp_path / "fresh")) for p in (tmp_path / "fresh").rglob("*") if p.is_dir())
    assert made == [
        "input",
        "models",
        "models/checkpoints",
        "models/embeddings",
        "models/loras",
        "models/vae",
        "output",
        "temp",
    ]


def test_path_resolves_listed_names(base: Path) -> None:
    folders = ModelFolders(base)
    for name in folders.list("checkpoints"):
        assert folders.path("checkpoints", name) == base.resolve() / "models/checkpoints" / name


@pytest.mark.parametrize(
    "name",
    ["../loras/style.pt", "sd15/../../loras/style.pt", "/etc/passwd", "", "   ", "a\x00b.safetensors"],
)
def test_path_refuses_names_that_leave_the_folders(base: Path, name: str) -> None:
    with pytest.raises(ModelFolderError) as caught:
        ModelFolders(base).path("checkpoints", name)
    assert not isinstance(caught.value, ModelNotFoundError)


def test_path_of_an_unknown_name_says_where_it_looked(base: Path) -> None:
    with pytest.raises(ModelNotFoundError, match=r"checkpoints file 'nope.safetensors' was not found in: .*checkpoints"):
        ModelFolders(base).path("checkpoints", "nope.safetensors")


def test_a_folder_is_not_a_file(base: Path) -> None:
    with pytest.raises(ModelNotFoundError):
        ModelFolders(base).path("checkpoints", "sd15")


def test_unknown_kind_is_named(base: Path) -> None:
    with pytest.raises(ModelFolderError, match="unknown folder kind 'controlnet'"):
        ModelFolders(base).list("controlnet")


def test_symlinked_folders_are_followed_and_a_loop_ends(base: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "shared-models"
    touch(elsewhere / "linked.safetensors")
    os.symlink(elsewhere, base / "models/checkpoints/shared")
    os.symlink(base / "models/checkpoints", base / "models/checkpoints/sd15/loop")
    names = ModelFolders(base).list("checkpoints")
    assert "shared/linked.safetensors" in names
    assert not any(name.startswith("sd15/loop/sd15/loop") for name in names)


# --- extra model paths (ComfyUI's extra_model_paths.yaml layout) ---------------------------------------


def test_comfyui_layout_adds_folders_after_our_own(base: Path, tmp_path: Path) -> None:
    comfy = tmp_path / "ComfyUI"
    touch(comfy / "models/checkpoints/comfy-model.safetensors")
    touch(comfy / "models/checkpoints/b.safetensors")  # same name as ours: ours wins
    touch(comfy / "models/loras/one.safetensors")
    touch(comfy / "models/more_loras/two.safetensors")
    touch(comfy / "models/embeddings/comfy-emb.pt")
    touch(comfy / "models/vae/comfy-vae.safetensors")
    config = tmp_path / "extra_model_paths.yaml"
    config.write_text(
        f"""
comfyui:
    base_path: {comfy}
    checkpoints: models/checkpoints/
    vae: models/vae/
    loras: |
        models/loras
        models/more_loras
    embeddings: models/embeddings
    controlnet: models/controlnet/
    upscale_models: models/upscale_models/
""",
        encoding="utf-8",
    )
    folders = ModelFolders(base, extra_paths=[config])
    assert folders.list("checkpoints") == [
        "a.ckpt",
        "b.safetensors",
        "comfy-model.safetensors",
        "sd15/realistic.safetensors",
    ]
    assert folders.list("loras") == ["one.safetensors", "style.pt", "two.safetensors"]
    assert folders.list("embeddings") == ["comfy-emb.pt", "easy.bin", "neg/bad-hands.pt"]
    assert folders.list("vae") == ["comfy-vae.safetensors", "vae-ft-mse.pth"]
    assert folders.path("checkpoints", "b.safetensors") == base.resolve() / "models/checkpoints/b.safetensors"
    assert folders.path("loras", "two.safetensors") == comfy / "models/more_loras/two.safetensors"
    assert folders.roots("checkpoints") == (base.resolve() / "models/checkpoints", comfy / "models/checkpoints")


def test_automatic1111_layout(base: Path, tmp_path: Path) -> None:
    webui = tmp_path / "stable-diffusion-webui"
    touch(webui / "models/Stable-diffusion/v1-5-pruned-emaonly.safetensors")
    touch(webui / "models/Stable-diffusion/v1-5-pruned-emaonly.yaml")
    touch(webui / "models/VAE/kl-f8.ckpt")
    touch(webui / "models/Lora/detail.safetensors")
    touch(webui / "models/LyCORIS/loha.safetensors")
    touch(webui / "embeddings/EasyNegative.safetensors")
    config = tmp_path / "a1111.yaml"
    config.write_text(
        f"""
a111:
    base_path: {webui}/

    checkpoints: models/Stable-diffusion
    configs: models/Stable-diffusion
    vae: models/VAE
    loras: |
         models/Lora
         models/LyCORIS
    upscale_models: |
                  models/ESRGAN
                  models/RealESRGAN
    embeddings: embeddings
    hypernetworks: models/hypernetworks
    controlnet: models/ControlNet
""",
        encoding="utf-8",
    )
    folders = ModelFolders(base, extra_paths=[config])
    assert "v1-5-pruned-emaonly.safetensors" in folders.list("checkpoints")
    assert "v1-5-pruned-emaonly.yaml" not in folders.list("checkpoints")
    assert folders.list("vae") == ["kl-f8.ckpt", "vae-ft-mse.pth"]
    assert folders.list("loras") == ["detail.safetensors", "loha.safetensors", "style.pt"]
    assert "EasyNegative.safetensors" in folders.list("embeddings")
    assert folders.path("embeddings", "EasyNegative.safetensors") == webui / "embeddings/EasyNegative.safetensors"


def test_relative_base_path_is_relative_to_the_yaml_file(base: Path, tmp_path: Path) -> None:
    touch(tmp_path / "configs/store/checkpoints/rel.safetensors")
    config = tmp_path / "configs/paths.yaml"
    config.write_text("store:\n  base_path: store\n  checkpoints: checkpoints\n", encoding="utf-8")
    assert "rel.safetensors" in ModelFolders(base, extra_paths=[config]).list("checkpoints")


def test_base_path_expands_home_and_variables(base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LL_TEST_MODELS", str(tmp_path / "from-env"))
    touch(tmp_path / "from-env/ckpt/env.safetensors")
    config = tmp_path / "paths.yaml"
    config.write_text("env:\n  base_path: $LL_TEST_MODELS\n  checkpoints: ckpt\n", encoding="utf-8")
    assert "env.safetensors" in ModelFolders(base, extra_paths=[config]).list("checkpoints")


def test_is_default_section_is_searched_first(base: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    touch(store / "checkpoints/b.safetensors")
    config = tmp_path / "paths.yaml"
    config.write_text(f"main:\n  base_path: {store}\n  is_default: true\n  checkpoints: checkpoints\n", encoding="utf-8")
    folders = ModelFolders(base, extra_paths=[config])
    assert folders.roots("checkpoints")[0] == store / "checkpoints"
    assert folders.path("checkpoints", "b.safetensors") == store / "checkpoints/b.safetensors"


def test_empty_and_null_sections_add_nothing(base: Path, tmp_path: Path) -> None:
    config = tmp_path / "paths.yaml"
    config.write_text("# nothing configured\nunused:\n", encoding="utf-8")
    extra = read_extra_model_paths(config)
    assert extra.folders == {} and extra.default_first == {}
    assert ModelFolders(base, extra_paths=[config]).roots("loras") == (base.resolve() / "models/loras",)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: [unclosed", "not valid YAML"),
        ("- just\n- a list\n", "expected sections"),
        ("section: text\n", "section 'section' is not a mapping"),
        ("s:\n  base_path: 5\n", "s.base_path must be a string"),
        ("s:\n  checkpoints: [a, b]\n", "s.checkpoints must be a path"),
    ],
)
def test_malformed_extra_paths_files_are_named(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(text, encoding="utf-8")
    with pytest.raises(ModelFolderError, match=message) as caught:
        ModelFolders(tmp_path, extra_paths=[config])
    assert str(config) in str(caught.value)


def test_missing_extra_paths_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ModelFolderError, match="cannot read extra model paths file"):
        ModelFolders(tmp_path, extra_paths=[tmp_path / "absent.yaml"])
