"""PNG, JPEG, BMP and GIF input: values against Pillow's own reading, layout, spacing, labels, errors.

Every file is made here with Pillow (or imagecodecs for 16-bit colour); the
reference for every value is Pillow's ``numpy.asarray(Image.open(path))`` (or the
array that was written), transposed into medconv's ``(i, j, 1[, c])``.
"""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

import medconv
from medconv.api import discover
from medconv.errors import UnreadableFileError, UnsupportedFormatError
from medconv.options import ReadOptions
from medconv.registry import reader_for
from medconv.source import Source

RNG = np.random.default_rng(13)


def as_volume_layout(pillow: np.ndarray) -> np.ndarray:
    """Pillow's (rows, columns[, c]) in medconv's (i, j, 1[, c])."""
    return pillow.T[:, :, None] if pillow.ndim == 2 else pillow.transpose(1, 0, 2)[:, :, None, :]


def read_file(path, root=None, options=ReadOptions()):
    reader = reader_for(path)
    assert reader.name == "image2d"
    source = Source(id=path.stem, reader="image2d", paths=(str(path),), root=str(root) if root else "")
    return reader.read(source, options)


def photo(rows=37, columns=53, channels=None, dtype=np.uint8):
    top = np.iinfo(dtype).max
    shape = (rows, columns) if channels is None else (rows, columns, channels)
    return RNG.integers(0, top, shape, dtype=dtype, endpoint=True)


@pytest.mark.parametrize("suffix, mode, channels", [
    pytest.param(".png", "L", None, id="png-grey8"),
    pytest.param(".png", "RGB", 3, id="png-rgb"),
    pytest.param(".bmp", "RGB", 3, id="bmp-rgb"),
    pytest.param(".bmp", "L", None, id="bmp-grey"),
    pytest.param(".jpg", "L", None, id="jpeg-grey"),
    pytest.param(".jpg", "RGB", 3, id="jpeg-rgb"),
])
def test_values_are_pillows(tmp_path, suffix, mode, channels):
    path = tmp_path / f"image{suffix}"
    Image.fromarray(photo(channels=channels)).save(path)
    volume = read_file(path)
    reference = np.asarray(Image.open(path))
    assert Image.open(path).mode == mode
    np.testing.assert_array_equal(volume.array, as_volume_layout(reference))
    assert volume.array.dtype == reference.dtype and volume.kind == "intensity"
    assert (volume.meta.get("axis4") == "channel") == (channels is not None)
    assert volume.spacing == (1.0, 1.0, 1.0) and volume.origin == (0.0, 0.0, 0.0)
    np.testing.assert_array_equal(volume.direction, np.eye(3))


def test_16bit_grey_png_keeps_every_bit(tmp_path):
    values = photo(dtype=np.uint16)
    path = tmp_path / "cxr.png"
    Image.fromarray(values).save(path)
    volume = read_file(path)
    assert volume.array.dtype == np.uint16
    np.testing.assert_array_equal(volume.array, as_volume_layout(values))
    np.testing.assert_array_equal(volume.array, as_volume_layout(np.asarray(Image.open(path))))


def test_16bit_colour_png_is_not_cut_to_8_bits(tmp_path):
    imagecodecs = pytest.importorskip("imagecodecs")
    values = photo(channels=3, dtype=np.uint16)
    path = tmp_path / "rgb48.png"
    path.write_bytes(imagecodecs.png_encode(values))
    assert np.asarray(Image.open(path)).dtype == np.uint8  # what Pillow alone would give
    volume = read_file(path)
    np.testing.assert_array_equal(volume.array, as_volume_layout(values))


def test_alpha_opaque_everywhere_is_dropped_otherwise_kept(tmp_path):
    rgba = photo(channels=4)
    rgba[..., 3] = 255
    Image.fromarray(rgba).save(tmp_path / "opaque.png")
    opaque = read_file(tmp_path / "opaque.png")
    np.testing.assert_array_equal(opaque.array, as_volume_layout(rgba[..., :3]))
    rgba[0, 0, 3] = 10
    Image.fromarray(rgba).save(tmp_path / "alpha.png")
    kept = read_file(tmp_path / "alpha.png")
    np.testing.assert_array_equal(kept.array, as_volume_layout(rgba))
    grey_alpha = np.stack([photo(), np.full((37, 53), 255, np.uint8)], axis=-1)
    Image.fromarray(grey_alpha).save(tmp_path / "la.png")
    np.testing.assert_array_equal(read_file(tmp_path / "la.png").array, as_volume_layout(grey_alpha[..., 0]))


def test_rgb_to_gray_is_pillows_luma(tmp_path):
    path = tmp_path / "fundus.png"
    Image.fromarray(photo(channels=3)).save(path)
    grey = read_file(path, options=ReadOptions(rgb_to_gray=True))
    np.testing.assert_array_equal(grey.array, as_volume_layout(np.asarray(Image.open(path).convert("L"))))
    assert "axis4" not in grey.meta


def test_palette_of_greys_gives_the_greys_shown(tmp_path):
    greys = np.array([0, 60, 130, 200], np.uint8)[RNG.integers(0, 4, (37, 53))]
    path = tmp_path / "scan.gif"
    Image.fromarray(greys).save(path)  # Pillow writes a palette of these 4 greys: indices 0..3, not the values
    assert Image.open(path).mode == "P" and np.asarray(Image.open(path)).max() < 60
    volume = read_file(path)
    np.testing.assert_array_equal(volume.array, as_volume_layout(np.asarray(Image.open(path).convert("L"))))


def _palette_image(indices: np.ndarray, colours: list[tuple[int, int, int]]) -> Image.Image:
    image = Image.fromarray(indices.astype(np.uint8), mode="P")
    image.putpalette([c for colour in colours for c in colour])
    return image


def test_colour_palette_mask_keeps_indices_and_colours(tmp_path):
    indices = np.zeros((30, 40), np.uint8)
    indices[5:10, 5:20], indices[15:25, 10:30] = 1, 2
    folder = tmp_path / "masks"
    folder.mkdir()
    path = folder / "case1.png"
    _palette_image(indices, [(0, 0, 0), (255, 0, 0), (0, 128, 255)]).save(path)
    volume = read_file(path, root=tmp_path)
    assert volume.kind == "label"
    np.testing.assert_array_equal(volume.array, as_volume_layout(np.asarray(Image.open(path))))
    assert [(entry["value"], entry["color"]) for entry in volume.meta["labels"]] == [(1, [255, 0, 0]),
                                                                                    (2, [0, 128, 255])]


def test_colour_palette_photo_becomes_rgb(tmp_path):
    indices = RNG.integers(0, 200, (30, 40))
    colours = [tuple(int(c) for c in RNG.integers(0, 256, 3)) for _ in range(256)]
    path = tmp_path / "photo.gif"
    _palette_image(indices, colours).save(path)
    volume = read_file(path)
    assert volume.kind == "intensity" and volume.meta["axis4"] == "channel"
    np.testing.assert_array_equal(volume.array, as_volume_layout(np.asarray(Image.open(path).convert("RGB"))))


def test_bilevel_png_is_a_label(tmp_path):
    mask = RNG.integers(0, 2, (20, 30)).astype(bool)
    path = tmp_path / "lesion.png"
    Image.fromarray(mask).save(path)
    assert Image.open(path).mode == "1"
    volume = read_file(path)
    assert volume.kind == "label" and volume.array.dtype == np.uint8
    np.testing.assert_array_equal(volume.array, as_volume_layout(np.asarray(Image.open(path)).astype(np.uint8)))


def test_png_phys_gives_the_spacing_print_dpi_does_not(tmp_path):
    path = tmp_path / "calibrated.png"
    Image.fromarray(photo()).save(path, dpi=(25.4 / 0.143, 25.4 / 0.143))  # 0.143 mm pixels -> 6993 px/m
    volume = read_file(path)
    np.testing.assert_allclose(volume.spacing[:2], 1000.0 / 6993, rtol=0, atol=1e-9)
    assert volume.meta["header"]["spacing_from"] == "PNG pHYs (pixels per metre)" and not volume.warnings
    Image.fromarray(photo()).save(tmp_path / "editor.png", dpi=(72, 72))
    edited = read_file(tmp_path / "editor.png")
    assert edited.spacing == (1.0, 1.0, 1.0) and "print resolution" in edited.meta["header"]["spacing_from"]
    assert any("1 mm" in warning for warning in edited.warnings)


def test_jpeg_density_per_cm_is_used_per_inch_is_not(tmp_path):
    path = tmp_path / "cm.jpg"
    Image.fromarray(photo()).save(path, dpi=(100, 100))
    data = bytearray(path.read_bytes())
    app0 = data.index(b"JFIF\x00")
    assert data[app0 + 7] == 1  # units: dots per inch
    data[app0 + 7] = 2  # dots per centimetre
    data[app0 + 8 : app0 + 12] = (50).to_bytes(2, "big") + (40).to_bytes(2, "big")
    path.write_bytes(bytes(data))
    volume = read_file(path)
    assert volume.spacing[:2] == pytest.approx((10.0 / 50, 10.0 / 40), abs=1e-12)
    inch = tmp_path / "inch.jpg"
    Image.fromarray(photo()).save(inch, dpi=(200, 200))
    assert read_file(inch).spacing == (1.0, 1.0, 1.0)


def test_animated_gif_reads_the_first_frame(tmp_path):
    frames = [Image.fromarray(photo()) for _ in range(3)]
    path = tmp_path / "cine.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    volume = read_file(path)
    with Image.open(path) as image:
        first = np.asarray(image.convert("L"))
    np.testing.assert_array_equal(volume.array, as_volume_layout(first))
    assert any("3 frames" in warning for warning in volume.warnings)


def test_truncated_png_names_the_file(tmp_path):
    path = tmp_path / "broken.png"
    Image.fromarray(photo(rows=200, columns=200)).save(path)
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(UnreadableFileError, match="broken.png"):
        read_file(path)


def test_forcing_a_colour_image_to_a_label_is_refused(tmp_path):
    path = tmp_path / "rgb.png"
    Image.fromarray(photo(channels=3)).save(path)
    with pytest.raises(UnsupportedFormatError, match="cannot be a label"):
        read_file(path, options=ReadOptions(kind="label"))


def _shenzhen_like(root):
    """CXR_png/CHNCXR_000N_0.png (8-bit grey), mask/CHNCXR_000N_0_mask.png (0/255)."""
    (root / "CXR_png").mkdir(parents=True)
    (root / "mask").mkdir()
    for n in (1, 2):
        Image.fromarray(photo(rows=64, columns=80)).save(root / "CXR_png" / f"CHNCXR_000{n}_0.png")
        mask = np.zeros((64, 80), np.uint8)
        mask[10:50, 8:35] = mask[10:50, 45:72] = 255
        Image.fromarray(mask).save(root / "mask" / f"CHNCXR_000{n}_0_mask.png")


def _drive_like(root):
    """training/images/*.tif (RGB), training/1st_manual/*_manual1.gif (vessels 0/255), training/mask/*_mask.gif."""
    import tifffile

    for folder in ("images", "1st_manual", "mask"):
        (root / "training" / folder).mkdir(parents=True)
    for n in (21, 22):
        tifffile.imwrite(root / "training" / "images" / f"{n}_training.tif", photo(rows=48, columns=44, channels=3))
        vessels = (RNG.random((48, 44)) > 0.8).astype(np.uint8) * 255
        Image.fromarray(vessels).save(root / "training" / "1st_manual" / f"{n}_manual1.gif")
        fov = np.zeros((48, 44), np.uint8)
        fov[4:44, 4:40] = 255
        Image.fromarray(fov).save(root / "training" / "mask" / f"{n}_training_mask.gif")


def test_shenzhen_like_folder_images_and_masks(tmp_path):
    _shenzhen_like(tmp_path)
    sources = {source.id: source for source in discover(tmp_path, ["image2d"])}
    assert sorted(sources) == ["CXR_png/CHNCXR_0001_0", "CXR_png/CHNCXR_0002_0", "mask/CHNCXR_0001_0_mask",
                               "mask/CHNCXR_0002_0_mask"]
    assert sources["mask/CHNCXR_0001_0_mask"].info["kind_guess"] == "label"
    assert sources["CXR_png/CHNCXR_0001_0"].info["shape"] == [80, 64, 1]
    for source_id, source in sources.items():
        volume = medconv.read(source)
        assert volume.kind == ("label" if source_id.startswith("mask/") else "intensity")
        np.testing.assert_array_equal(volume.array, as_volume_layout(np.asarray(Image.open(source.path))))


def test_drive_like_folder_tiff_images_gif_masks(tmp_path):
    pytest.importorskip("tifffile")
    _drive_like(tmp_path)
    found = {source.id: source for source in discover(tmp_path, ["tiff", "image2d"])}
    assert len(found) == 6
    for source_id, source in found.items():
        # mask/ by name; 1st_manual/ only when named (content never decides the kind: scan and convert agree)
        volume = medconv.read(source, options=ReadOptions(label_patterns=("mask", "1st_manual")))
        if source_id.endswith("_training"):
            assert volume.kind == "intensity" and volume.shape == (44, 48, 1, 3)
            continue
        assert volume.kind == "label", source_id
        reference = np.asarray(Image.open(source.path).convert("L"))
        np.testing.assert_array_equal(volume.array, as_volume_layout(reference))


def test_2d_nifti_and_npz_of_a_png(tmp_path):
    values = photo(dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "cxr.png", dpi=(25.4 / 0.2, 25.4 / 0.2))
    medconv.convert(tmp_path / "cxr.png", tmp_path / "cxr.nii.gz")
    image = nib.load(tmp_path / "cxr.nii.gz")
    assert image.shape == (53, 37, 1)
    np.testing.assert_array_equal(np.asanyarray(image.dataobj)[:, :, 0], values.T)
    np.testing.assert_allclose(image.affine, np.diag([-0.2, -0.2, 1.0, 1.0]), atol=1e-4)
    medconv.convert(tmp_path / "cxr.png", tmp_path / "cxr.npz")
    with np.load(tmp_path / "cxr.npz") as fields:
        np.testing.assert_array_equal(fields["array"][:, :, 0], values.T)
        assert json.loads(str(fields["meta"]))["source_format"] == "image2d"


def test_preview_folders_of_earlier_runs_are_not_images(tmp_path):
    from medconv.batch.run import PREVIEW_DIR
    from medconv.readers.image2d import PREVIEW_FOLDER

    assert PREVIEW_FOLDER == PREVIEW_DIR
    preview = tmp_path / "out" / PREVIEW_DIR / "case1"
    preview.mkdir(parents=True)
    Image.fromarray(photo()).save(preview / "scan.png")
    (tmp_path / "out" / PREVIEW_DIR / "index.html").write_text("<html></html>")
    Image.fromarray(photo()).save(tmp_path / "out" / "real.png")
    assert [source.id for source in discover(tmp_path, ["image2d"])] == ["out/real"]
