"""Image moderation on the tiny ViT (real loading path, random weights) and real photographs from examples/images."""
from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import moderation
from moderation import IMAGE_CATEGORIES, ModelUnavailableError
from moderation.image import (
    MAX_DISTANCE,
    MAX_FRAMES,
    BlocklistError,
    ImageVerdict,
    add_to_blocklist,
    blocklist_path,
    censored_preview,
    list_blocklist,
    load_frames,
    moderate_image,
    remove_from_blocklist,
)
from moderation.image.categories import IMAGENET_CLASSES, NSFW_CLASSES, category_scores, map_labels, synonyms
from moderation.image.decode import frame_indices
from moderation.taxonomy import DEFAULT_IMAGE_THRESHOLDS
from moderation.testing.tiny_models import VIT_LABELS

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "images"
CAT = EXAMPLES / "chelsea_the_cat.jpg"
COFFEE = EXAMPLES / "coffee.jpg"


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """Offline, no model or NSFW setting from the environment, and a blocklist of the test's own."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("MODERATION_IMAGE_MODEL", raising=False)
    monkeypatch.delenv("MODERATION_NSFW_MODEL", raising=False)
    monkeypatch.setenv("MODERATION_IMAGE_BLOCKLIST", str(tmp_path / "blocklist.json"))


@pytest.fixture
def vit(tiny_models) -> str:
    return str(tiny_models["vit"])


@pytest.fixture(scope="session")
def nsfw_vit(tiny_models, tmp_path_factory) -> str:
    """The tiny ViT with a two-label head named like Falconsai/nsfw_image_detection's."""
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    labels = {0: "normal", 1: "nsfw"}
    model = AutoModelForImageClassification.from_pretrained(
        tiny_models["vit"], id2label=labels, label2id={v: k for k, v in labels.items()}, ignore_mismatched_sizes=True
    )
    target = tmp_path_factory.mktemp("nsfw_vit")
    model.save_pretrained(target)
    AutoImageProcessor.from_pretrained(tiny_models["vit"]).save_pretrained(target)
    return str(target)


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def cat() -> Image.Image:
    with Image.open(CAT) as image:
        return image.convert("RGB")


def edge_strength(image: Image.Image) -> float:
    """Mean brightness step between neighbouring pixels: high for a sharp photo, low once detail is hidden."""
    return float(np.abs(np.diff(np.asarray(image.convert("L"), dtype=float), axis=1)).mean())


def mean_difference(a: Image.Image, b: Image.Image) -> float:
    return float(np.abs(np.asarray(a, dtype=float) - np.asarray(b.convert("RGB"), dtype=float)).mean())


# --- verdicts ---------------------------------------------------------------------------------------------------

def test_verdict_scores_every_category_and_is_json_ready(vit):
    verdict = moderate_image(CAT, model=vit)
    assert isinstance(verdict, ImageVerdict)
    assert list(verdict.scores) == list(IMAGE_CATEGORIES)
    assert all(0.0 <= score <= 1.0 for score in verdict.scores.values())
    assert len(verdict.labels) == 5 and {label for label, _ in verdict.labels} <= set(VIT_LABELS)
    assert [p for _, p in verdict.labels] == sorted((p for _, p in verdict.labels), reverse=True)
    # The tiny ViT's labels include weapons, drugs, alcohol and swimwear, but no nudity and no guillotine.
    assert verdict.not_assessed == ["sexual", "violence"]
    assert verdict.nsfw_model is None and verdict.model == vit and verdict.frames_checked == 1
    assert verdict.thresholds == dict(DEFAULT_IMAGE_THRESHOLDS) and verdict.matched_blocklist is None
    assert json.loads(json.dumps(verdict.to_dict()))["scores"] == verdict.scores


def test_path_bytes_and_pil_image_give_the_same_verdict(vit):
    by_path = moderate_image(CAT, model=vit)
    assert moderate_image(CAT.read_bytes(), model=vit).scores == by_path.scores
    assert moderate_image(str(CAT), model=vit).scores == by_path.scores
    with Image.open(CAT) as image:
        assert moderate_image(image, model=vit).scores == pytest.approx(by_path.scores)


def test_category_score_is_the_probability_mass_of_its_classes(vit):
    from moderation.image import classifier

    loaded = classifier.load_image_classifier(vit)
    [probabilities] = classifier.classify(loaded, load_frames(CAT))
    assert sum(probabilities.values()) == pytest.approx(1.0)
    verdict = moderate_image(CAT, model=vit)
    assert verdict.scores["weapons"] == pytest.approx(
        probabilities["assault rifle, assault gun"] + probabilities["revolver, six-gun, six-shooter"])
    assert verdict.scores["alcohol"] == pytest.approx(probabilities["beer bottle"] + probabilities["wine bottle"])
    assert verdict.scores["sexual"] == 0.0


def test_thresholds_decide_what_is_flagged_most_severe_first(vit):
    everything = moderate_image(CAT, model=vit, thresholds=0.0)
    assert everything.flagged and everything.categories == ["weapons", "drugs", "suggestive", "alcohol"]
    nothing = moderate_image(CAT, model=vit, thresholds=1.0)
    assert not nothing.flagged and nothing.categories == []
    only_alcohol = moderate_image(CAT, model=vit, thresholds={"alcohol": 0.0})
    assert "alcohol" in only_alcohol.categories
    with pytest.raises(ValueError, match="unknown category 'alcohool'"):
        moderate_image(CAT, model=vit, thresholds={"alcohool": 0.1})


def test_model_comes_from_the_environment_when_not_given(vit, monkeypatch):
    monkeypatch.setenv("MODERATION_IMAGE_MODEL", vit)
    assert moderate_image(CAT).model == vit


def test_missing_model_directory_is_a_clear_error(tmp_path):
    missing = tmp_path / "no-such-vit"
    with pytest.raises(ModelUnavailableError, match="MODERATION_IMAGE_MODEL") as error:
        moderate_image(CAT, model=str(missing))
    assert str(missing) in str(error.value)


def test_nsfw_model_scores_sexual_and_is_reported(vit, nsfw_vit, monkeypatch):
    from moderation.image import classifier

    verdict = moderate_image(CAT, model=vit, nsfw_model=nsfw_vit, thresholds={"sexual": 0.0})
    [probabilities] = classifier.classify(classifier.load_nsfw_classifier(nsfw_vit), load_frames(CAT))
    assert verdict.nsfw_model == nsfw_vit and verdict.not_assessed == ["violence"]
    assert verdict.scores["sexual"] == pytest.approx(probabilities["nsfw"])
    assert verdict.categories[0] == "sexual"
    monkeypatch.setenv("MODERATION_NSFW_MODEL", nsfw_vit)
    assert moderate_image(CAT, model=vit).nsfw_model == nsfw_vit


def test_nsfw_model_whose_labels_map_to_nothing_is_refused(vit):
    with pytest.raises(ModelUnavailableError, match="none of its labels"):
        moderate_image(CAT, model=vit, nsfw_model=vit)


def test_top_level_package_exports_the_image_api():
    assert moderation.moderate_image is moderate_image and moderation.ImageVerdict is ImageVerdict


def test_importing_the_image_package_does_not_load_torch():
    code = "import sys, moderation.image; print('torch' in sys.modules or 'transformers' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


# --- the ImageNet and NSFW tables --------------------------------------------------------------------------------

def test_label_tables_cover_the_taxonomy_without_ambiguity():
    assert set(IMAGENET_CLASSES) == set(IMAGE_CATEGORIES)
    for table in (IMAGENET_CLASSES, NSFW_CLASSES):
        names = [name for entries in table.values() for entry in entries for name in synonyms(entry)]
        owners = {name: {c for c, entries in table.items() for e in entries if name in synonyms(e)} for name in names}
        assert all(len(categories) == 1 for categories in owners.values()), owners


def test_labels_match_on_any_synonym_in_any_spelling():
    mapped = map_labels(
        ["assault rifle, assault gun", "Assault_Rifle", "six-shooter", "maillot, tank suit", "tabby, tabby cat",
         "Red Wine", "trifle", "rifleman"],
        IMAGENET_CLASSES,
    )
    assert mapped == {"assault rifle, assault gun": "weapons", "Assault_Rifle": "weapons", "six-shooter": "weapons",
                      "maillot, tank suit": "suggestive", "Red Wine": "alcohol"}
    assert map_labels(["drawings", "hentai", "neutral", "porn", "sexy"], NSFW_CLASSES) == {
        "hentai": "sexual", "porn": "sexual", "sexy": "suggestive"}
    scores = category_scores({"rifle": 0.3, "assault rifle, assault gun": 0.3, "daisy": 0.4},
                             map_labels(["rifle", "assault rifle, assault gun"], IMAGENET_CLASSES), IMAGE_CATEGORIES)
    assert scores["weapons"] == pytest.approx(0.6) and scores["alcohol"] == 0.0


# --- decoding any file --------------------------------------------------------------------------------------------

def _exif_rotated_jpeg() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    return encode(cat(), "JPEG", exif=exif, quality=95)


def _palette_gif_with_transparency() -> bytes:
    image = cat().convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    return encode(image, "GIF", transparency=0)


def _half_transparent_png() -> bytes:
    image = cat().convert("RGBA")
    alpha = Image.new("L", image.size, 255)
    alpha.paste(0, (0, 0, image.width // 2, image.height))
    image.putalpha(alpha)
    return encode(image, "PNG")


def _sixteen_bit_png() -> bytes:
    grey = np.asarray(cat().convert("L"), dtype=np.uint16) * 257
    return encode(Image.fromarray(grey), "PNG")


ODD_MODES = {
    "exif-rotated JPEG": (_exif_rotated_jpeg, lambda: cat().transpose(Image.Transpose.ROTATE_270)),
    "palette GIF with transparency": (_palette_gif_with_transparency, None),
    "RGBA PNG": (_half_transparent_png, None),
    "LA PNG": (lambda: encode(cat().convert("LA"), "PNG"), lambda: cat().convert("L")),
    "CMYK JPEG": (lambda: encode(cat().convert("CMYK"), "JPEG", quality=95), cat),
    "CMYK TIFF": (lambda: encode(cat().convert("CMYK"), "TIFF"), cat),
    "16-bit PNG": (_sixteen_bit_png, lambda: cat().convert("L")),
    "float TIFF": (lambda: encode(cat().convert("F"), "TIFF"), None),
    "greyscale PNG": (lambda: encode(cat().convert("L"), "PNG"), lambda: cat().convert("L")),
    "bilevel PNG": (lambda: encode(cat().convert("1"), "PNG"), lambda: cat().convert("1")),
    "BMP": (lambda: encode(cat(), "BMP"), cat),
    "WebP": (lambda: encode(cat(), "WEBP", quality=95), cat),
}


@pytest.mark.parametrize("kind", list(ODD_MODES))
def test_every_image_kind_becomes_an_upright_rgb_frame_and_is_moderated(kind, vit):
    make, expected = ODD_MODES[kind]
    data = make()
    [frame] = load_frames(data)
    assert frame.mode == "RGB"
    if expected is not None:
        assert frame.size == expected().size
        assert mean_difference(frame, expected()) < 6, "decoded pixels should match the picture"
    assert frame.getextrema() != ((0, 0), (0, 0), (0, 0)) and np.asarray(frame).std() > 20, "not blank"
    assert list(moderate_image(data, model=vit).scores) == list(IMAGE_CATEGORIES)


def test_transparency_is_flattened_onto_white():
    frame = load_frames(_half_transparent_png())[0]
    assert frame.getpixel((5, 5)) == (255, 255, 255)
    assert frame.getpixel((frame.width - 5, 5)) == cat().getpixel((frame.width - 5, 5))


def test_a_caller_image_is_not_moved_off_its_frame():
    frames = [Image.new("RGB", (40, 30), colour) for colour in ("red", "green", "blue")]
    with Image.open(io.BytesIO(encode(frames[0], "GIF", save_all=True, append_images=frames[1:]))) as animation:
        animation.seek(1)
        assert len(load_frames(animation)) == 3
        assert animation.tell() == 1


def _animation(fmt: str, count: int, odd_one_out: int, size=(64, 48)) -> bytes:
    """`count` flat frames, each a different grey (encoders merge identical frames), with the cat as `odd_one_out`."""
    frames = [Image.new("RGB", size, (10 * i,) * 3) for i in range(count)]
    frames[odd_one_out] = cat().resize(size)
    return encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=50, loop=0)


@pytest.mark.parametrize("fmt", ["GIF", "WEBP"])
def test_animations_check_several_frames_and_any_frame_can_flag(fmt, vit, tmp_path):
    blocklist = tmp_path / f"{fmt}.json"
    add_to_blocklist(cat().resize((64, 48)), note="known cat", path=blocklist)
    data = _animation(fmt, count=15, odd_one_out=14)  # the last frame, which the even spread always includes
    verdict = moderate_image(data, model=vit, blocklist=blocklist)
    assert verdict.frames_checked == MAX_FRAMES
    assert verdict.matched_blocklist is not None and verdict.matched_blocklist.entry.note == "known cat"
    per_frame = [moderate_image(frame, model=vit).scores for frame in load_frames(data)]
    assert verdict.scores == pytest.approx({c: max(s[c] for s in per_frame) for c in IMAGE_CATEGORIES})


def test_frame_sampling_spreads_over_what_the_pixel_budget_can_decode():
    assert frame_indices(1, 100, 10_000) == [0]
    assert frame_indices(3, 100, 10_000) == [0, 1, 2]
    spread = frame_indices(100, 100, 10**9)
    assert len(spread) == MAX_FRAMES and spread[0] == 0 and spread[-1] == 99
    assert max(frame_indices(100, 1000, 20_000)) == 19  # only the first 20 frames fit in the budget


def test_long_animation_is_bounded_by_the_pixel_budget():
    frames = [Image.new("L", (400, 400), i % 200) for i in range(120)]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    start = time.perf_counter()
    decoded = load_frames(data, max_pixels=20 * 400 * 400)
    assert len(decoded) == MAX_FRAMES and time.perf_counter() - start < 2
    assert decoded[-1].getpixel((0, 0))[0] == 19  # frame 19 is the last one the budget reaches


def _png_header(width: int, height: int) -> bytes:
    """A valid PNG signature and header claiming width x height, with almost no pixel data behind it."""
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\0" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def _truncated_jpeg() -> bytes:
    data = CAT.read_bytes()
    return data[: len(data) // 2]


def _corrupt_png() -> bytes:
    data = bytearray(encode(cat(), "PNG"))
    data[200:4000] = bytes(3800)  # zeroes over the compressed pixel data
    return bytes(data)


BAD_INPUTS = {
    "empty bytes": (lambda: b"", "empty"),
    "text": (lambda: b"this is not an image, just some text\n" * 10, "Not a supported image"),
    "EPS (refused format)": (lambda: b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n", "Not a supported image"),
    "truncated JPEG": (_truncated_jpeg, "truncated"),
    "corrupt PNG": (_corrupt_png, "corrupt"),
    "60000x60000 PNG bomb": (lambda: _png_header(60000, 60000), "too large|decompression bomb"),
    "8000x8000 PNG (over our limit, under PIL's)": (lambda: _png_header(8000, 8000), "64,000,000 pixels"),
    "zero-size header": (lambda: _png_header(0, 10), "."),
}


@pytest.mark.parametrize("kind", list(BAD_INPUTS))
def test_bad_input_is_a_quick_clear_value_error(kind, tmp_path):
    make, message = BAD_INPUTS[kind]
    start = time.perf_counter()
    with pytest.raises(ValueError, match=message):
        # A model directory that does not exist: decoding must fail first, before any model is needed.
        moderate_image(make(), model=str(tmp_path / "never-loaded"))
    assert time.perf_counter() - start < 2


def test_pixel_limit_does_not_depend_on_pil_global_settings(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # some other code switched PIL's own bomb check off
    with pytest.raises(ValueError, match="3,600,000,000 pixels"):
        load_frames(_png_header(60000, 60000))


def test_byte_limit_and_missing_files_are_value_errors(tmp_path):
    with pytest.raises(ValueError, match="limit is 1,000 bytes"):
        load_frames(CAT, max_bytes=1000)
    with pytest.raises(ValueError, match="limit is 1,000 bytes"):
        load_frames(CAT.read_bytes(), max_bytes=1000)
    with pytest.raises(ValueError, match="not found"):
        load_frames(tmp_path / "missing.jpg")
    with pytest.raises(TypeError):
        load_frames(12345)


# --- known-image blocklist ----------------------------------------------------------------------------------------

def _jpeg_again(image: Image.Image, quality: int) -> bytes:
    return encode(image, "JPEG", quality=quality)


def test_blocklist_add_list_remove_persists_as_json(tmp_path):
    path = tmp_path / "nested" / "list.json"
    entry = add_to_blocklist(CAT, note="reported 2024-05-01", path=path)
    assert add_to_blocklist(CAT.read_bytes(), note="again", path=path) == entry  # no duplicates
    assert list_blocklist(path) == [entry] and len(entry.hash) == 16
    saved = json.loads(path.read_text())
    assert saved["version"] == 1 and saved["entries"] == [entry.to_dict()]
    assert [p.name for p in path.parent.iterdir()] == ["list.json"], "no temporary files left behind"
    assert remove_from_blocklist(entry.hash, path=path) is True
    assert remove_from_blocklist(entry.hash, path=path) is False
    assert list_blocklist(path) == []


@pytest.mark.parametrize("change", ["half size", "double size", "JPEG quality 30", "2% crop", "resize + JPEG 50"])
def test_blocklist_matches_a_known_image_after_common_changes(change, vit):
    original = cat()
    width, height = original.size
    changed = {
        "half size": lambda: original.resize((width // 2, height // 2)),
        "double size": lambda: original.resize((width * 2, height * 2)),
        "JPEG quality 30": lambda: _jpeg_again(original, 30),
        "2% crop": lambda: original.crop((width // 50, height // 50, width - width // 50, height - height // 50)),
        "resize + JPEG 50": lambda: _jpeg_again(original.resize((300, 200)), 50),
    }[change]()
    entry = add_to_blocklist(CAT, note="known")
    verdict = moderate_image(changed, model=vit, thresholds=1.0)
    assert verdict.flagged and verdict.categories == []  # flagged by the match alone
    assert verdict.matched_blocklist.entry == entry and verdict.matched_blocklist.distance <= MAX_DISTANCE


@pytest.mark.parametrize("other", ["coffee.jpg", "astronaut.jpg", "rocket.jpg", "hubble_deep_field.jpg"])
def test_blocklist_does_not_match_a_different_image(other, vit):
    add_to_blocklist(CAT)
    verdict = moderate_image(EXAMPLES / other, model=vit, thresholds=1.0)
    assert verdict.matched_blocklist is None and not verdict.flagged


@pytest.mark.parametrize("content", [b"{not json", b'{"version": 1, "entries": [{"hash": "xyz"}]}', b"[]",
                                     b'{"version": 7, "entries": []}', b"\xff\xfe\x00garbage"])
def test_corrupt_blocklist_is_an_error_and_is_never_emptied(content, tmp_path, vit):
    path = tmp_path / "blocklist.json"
    path.write_bytes(content)
    with pytest.raises(BlocklistError, match="corrupt"):
        moderate_image(CAT, model=vit, blocklist=path)
    with pytest.raises(BlocklistError, match=str(path)):
        add_to_blocklist(CAT, path=path)
    assert path.read_bytes() == content


def test_blocklist_location_argument_then_environment_then_user_cache(monkeypatch, tmp_path):
    assert blocklist_path(tmp_path / "given.json") == tmp_path / "given.json"
    assert blocklist_path() == tmp_path / "blocklist.json"  # from the autouse fixture's environment variable
    monkeypatch.delenv("MODERATION_IMAGE_BLOCKLIST")
    monkeypatch.delenv("MODERATION_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert blocklist_path() == tmp_path / "cache" / "moderation" / "image_blocklist.json"


# --- censored preview -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("style", ["pixelate", "blur"])
def test_censored_preview_is_small_and_hides_detail(style):
    big = cat().resize((1200, 800))
    preview = censored_preview(big, style=style, max_side=300)
    assert preview.mode == "RGB" and preview.size == (300, 200)
    assert edge_strength(preview) < edge_strength(big.resize((300, 200))) / 3
    if style == "pixelate":
        assert preview.getcolors(maxcolors=16 * 11) is not None  # at most one colour per block


def test_censored_preview_refuses_an_unknown_style():
    with pytest.raises(ValueError, match="pixelate"):
        censored_preview(CAT, style="sepia")


def test_a_gif_with_too_many_frames_is_refused_from_its_structure():
    """PIL counts GIF frames by decoding through them: 850,000 one-pixel frames held an image slot for up to a
    minute. The block structure is counted first, without decoding."""
    import time

    import numpy as np

    from moderation.image.decode import MAX_GIF_FRAMES, gif_frame_count

    rng = np.random.default_rng(0)
    frames = [Image.fromarray(rng.integers(0, 255, (20, 30, 3), dtype=np.uint8)) for _ in range(7)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=50)
    assert gif_frame_count(buffer.getvalue(), 100) == Image.open(io.BytesIO(buffer.getvalue())).n_frames == 7
    many = [Image.new("RGB", (1, 1), (i % 256, (i // 256) % 256, 0)) for i in range(MAX_GIF_FRAMES + 500)]
    buffer = io.BytesIO()
    many[0].save(buffer, "GIF", save_all=True, append_images=many[1:], duration=10)
    started = time.perf_counter()
    with pytest.raises(ValueError, match=f"more than {MAX_GIF_FRAMES:,} frames"):
        load_frames(buffer.getvalue())
    assert time.perf_counter() - started < 2
