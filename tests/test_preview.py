"""Preview pictures: the same anatomy gives the same picture whatever the storage order, in radiological display."""

from __future__ import annotations

import numpy as np
import pytest

from medconv.preview import display_panels, pair_key, write_unit_preview
from medconv.volume import Volume

SHAPE = (8, 6, 5)  # x (towards L), y (towards P), z (towards S)
SPACING = (0.5, 0.75, 2.0)
ORIGIN = (-10.0, 20.0, 5.0)


def world_grid() -> np.ndarray:
    """LPS position of every voxel of the canonical LPS-stored volume, shape SHAPE + (3,)."""
    axes = [ORIGIN[n] + SPACING[n] * np.arange(SHAPE[n]) for n in range(3)]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)


def stored(values: np.ndarray, flips=(False, False, False), order=(0, 1, 2)) -> Volume:
    """The same world image stored with some axes flipped and permuted (geometry adjusted to match)."""
    direction = np.eye(3)
    origin = np.array(ORIGIN)
    array = values
    for axis, flip in enumerate(flips):
        if flip:
            array = np.flip(array, axis)
            origin[axis] += SPACING[axis] * (SHAPE[axis] - 1)
            direction[:, axis] *= -1
    array = np.ascontiguousarray(array.transpose(order))
    return Volume(array, spacing=tuple(SPACING[n] for n in order), origin=tuple(origin),
                  direction=direction[:, list(order)])


STORAGES = [
    pytest.param((False, False, False), (0, 1, 2), id="LPS"),
    pytest.param((True, True, False), (0, 1, 2), id="RAS"),
    pytest.param((False, True, True), (2, 0, 1), id="permuted-and-flipped"),
    pytest.param((True, False, True), (1, 2, 0), id="other-permutation"),
]


@pytest.mark.parametrize("flips, order", STORAGES)
def test_the_picture_does_not_depend_on_storage_order(flips, order):
    values = np.arange(np.prod(SHAPE), dtype=np.int32).reshape(SHAPE)
    reference, reference_sizes = display_panels(stored(values))
    panels, sizes = display_panels(stored(values, flips, order))
    for got, expected in zip(panels, reference):
        np.testing.assert_array_equal(got, expected)
    np.testing.assert_allclose(sizes, reference_sizes)


@pytest.mark.parametrize("flips, order", STORAGES)
def test_radiological_display_directions(flips, order):
    grid = world_grid()
    left = display_panels(stored(grid[..., 0], flips, order))[0]  # value grows towards the patient's left
    posterior = display_panels(stored(grid[..., 1], flips, order))[0]
    superior = display_panels(stored(grid[..., 2], flips, order))[0]
    axial, coronal, sagittal = 0, 1, 2
    # axial and coronal: the patient's left is on the picture's right
    assert np.all(np.diff(left[axial], axis=1) > 0) and np.all(np.diff(left[coronal], axis=1) > 0)
    # axial: anterior at the top; sagittal: anterior on the left
    assert np.all(np.diff(posterior[axial], axis=0) > 0) and np.all(np.diff(posterior[sagittal], axis=1) > 0)
    # coronal and sagittal: superior at the top
    assert np.all(np.diff(superior[coronal], axis=0) < 0) and np.all(np.diff(superior[sagittal], axis=0) < 0)


def test_panel_pixel_sizes_keep_the_physical_aspect():
    _, sizes = display_panels(stored(world_grid()[..., 0], (False, False, True), (2, 0, 1)))
    assert sizes == [(0.75, 0.5), (2.0, 0.5), (2.0, 0.75)]


def test_ct_picture_is_written_with_a_soft_tissue_window(tmp_path):
    from PIL import Image

    values = np.full(SHAPE, -1000, np.int16)
    values[2:6, 1:5, :] = 40  # soft tissue: mid-grey in a 40/400 window
    volume = Volume(values, spacing=SPACING, meta={"modality": "CT"})
    png = write_unit_preview(volume, str(tmp_path / "case.nii.gz"))
    picture = np.asarray(Image.open(png).convert("L"))
    assert png.endswith("case.png") and picture.max() >= 120 and 100 < np.median(picture[picture > 60]) < 160


@pytest.mark.parametrize("image, label", [
    pytest.param("subset0/1.3.6.1.4.1.14519.5.2.1.6279.6001.1055", "seg-lungs-LUNA16/1.3.6.1.4.1.14519.5.2.1.6279.6001.1055",
                 id="luna16"),
    pytest.param("liver-orig001", "liver-seg001", id="sliver07"),
    pytest.param("imagesTr/la_003", "labelsTr/la_003", id="decathlon"),
])
def test_images_and_label_maps_pair_by_name(image, label):
    assert pair_key(image) == pair_key(label)
    assert pair_key("liver-orig001") != pair_key("liver-orig002")


# -- where the slices go, and what the caption says -------------------------------------------------------------

def _blob_tree(root):
    """A Decathlon-like image/label pair: a nodule-like ball far from the middle, and a smaller blob elsewhere."""
    import nibabel as nib

    shape = (48, 40, 30)
    grid = np.stack(np.meshgrid(*(np.arange(n) for n in shape), indexing="ij"), axis=-1)
    nodule = ((grid - (38, 9, 24)) ** 2).sum(axis=-1) <= 9      # radius 3 voxels, near a corner
    speck = ((grid - (8, 30, 5)) ** 2).sum(axis=-1) <= 1          # smaller: must not be chosen
    image = np.where(nodule, 60, -800).astype(np.int16)
    labels = (nodule | speck).astype(np.uint8)
    affine = np.diag([-0.8, -0.8, 2.0, 1.0])                      # i towards L, j towards P: LPS storage
    for folder, data in (("imagesTr", image), ("labelsTr", labels)):
        (root / folder).mkdir(parents=True)
        nib.save(nib.Nifti1Image(data, affine), str(root / folder / "lung_001.nii.gz"))
    return nodule


def test_overlay_goes_through_an_off_centre_nodule(tmp_path):
    import re

    from PIL import Image

    from medconv.cli.main import main

    nodule = _blob_tree(tmp_path / "src")
    middle = tuple(n // 2 for n in nodule.shape)
    assert not (nodule[middle[0]].any() or nodule[:, middle[1]].any() or nodule[:, :, middle[2]].any())
    assert main(["convert", str(tmp_path / "src"), str(tmp_path / "out"), "--preview", "-q", "-j", "1"]) == 0
    preview = tmp_path / "out" / "_preview"
    index = (preview / "index.html").read_text()
    caption = re.search(r"lung_001 \+ lung_001.*?slices through voxel \(i, j, k\) = \((\d+), (\d+), (\d+)\)", index)
    i, j, k = map(int, caption.groups())
    # each of the three slices cuts the nodule (numpy on the label array, not medconv's code)
    assert nodule[i].any() and nodule[:, j].any() and nodule[:, :, k].any()
    # and the picture shows it: tinted (non-grey) pixels in each of the three panels
    picture = np.asarray(Image.open(preview / "imagesTr" / "lung_001.overlay.png").convert("RGB")).astype(int)
    tinted = np.flatnonzero(((picture.max(axis=2) - picture.min(axis=2)) > 20)[40:].any(axis=0))  # below the caption
    groups = np.split(tinted, np.flatnonzero(np.diff(tinted) > 10) + 1)
    assert len(groups) >= 3, "mask colour in the axial, coronal and sagittal panels"


def test_tilt_repaired_series_says_so_in_its_caption(tmp_path):
    from medconv.cli.main import main

    assert main(["sample", str(tmp_path / "sample"), "--patients", "2", "--slices", "8", "--size", "32"]) == 0
    assert main(["tcia2nii", str(tmp_path / "sample"), str(tmp_path / "out"), "--preview", "-q", "-j", "1"]) == 0
    index = (tmp_path / "out" / "_preview" / "index.html").read_text()
    figures = index.split("<figure>")[1:]
    tilted = [f for f in figures if "tilt" in f.split("<figcaption>")[1].split("<br>")[0]]
    assert tilted and all("gantry tilt repaired: resampled onto an orthogonal grid" in f for f in tilted)
    assert sum("gantry tilt repaired" in f for f in figures) == len(tilted)


def test_captions_wrap_and_are_never_cut():
    from PIL import Image, ImageDraw

    from medconv.preview import wrap_caption

    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    text = ["1.3.6.1.4.1.14519.5.2.1.6279.6001.105756658031515062000744821260_with_a_very_long_series_description"
            "  512x512x300  LPS  intensity", "slices through voxel (i, j, k) = (256, 256, 150), the middle of the volume"]
    lines = wrap_caption(text, 200, draw)
    assert all(draw.textlength(line) <= 200 for line in lines) and len(lines) > 2
    assert "".join(lines).replace(" ", "") == "".join(text).replace(" ", "")


def test_a_2d_image_preview_is_the_image_itself(tmp_path):
    """A radiograph's preview is one panel: the picture as stored (its PNG), not three cuts of a slab."""
    from PIL import Image

    from medconv.preview import display_panels, write_unit_preview

    rows, columns = 60, 90
    picture = np.zeros((rows, columns), np.uint8)
    picture[5:15, 70:85] = 255  # top right, as stored
    volume = Volume(picture.T[:, :, None], spacing=(0.2, 0.2, 1.0))
    (panel,), (size,) = display_panels(volume)
    np.testing.assert_array_equal(panel, picture)
    assert size == (0.2, 0.2)
    png = np.asarray(Image.open(write_unit_preview(volume, str(tmp_path / "cxr.png"))).convert("L"))
    bright = np.argwhere(png > 250)
    height, width = png.shape
    from medconv.preview import PANEL_SIZE

    assert width < 2 * PANEL_SIZE  # one panel, not three
    assert bright[:, 1].mean() > width * 0.6 and bright[:, 0].mean() < height * 0.5  # the patch top right


@pytest.mark.parametrize("axis4", ["time", "echo", "volume", None])
def test_a_one_slice_series_shows_its_first_volume_in_grey_not_false_colours(tmp_path, axis4):
    """One slice of a 4D series (a single-slice perfusion, a one-position DWI) is a 2D picture, but its 4th axis is
    not colour: the picture is the first volume (as the three views of a 4D volume show), grey; only a 4th axis of
    channels (an RGB picture) is shown in colour."""
    from PIL import Image

    i, j = np.meshgrid(np.arange(40), np.arange(30), indexing="ij")
    frames = [np.where((i - 10 - 6 * t) ** 2 + (j - 15) ** 2 < 25, 1000, 100).astype(np.int16) for t in range(4)]
    volume = Volume(np.stack(frames, axis=-1)[:, :, None, :], spacing=(1.0, 1.0, 3.0),
                    meta={"axis4": axis4} if axis4 else {})
    (panel,), _ = display_panels(volume)
    np.testing.assert_array_equal(panel, frames[0].T)
    rgb = np.asarray(Image.open(write_unit_preview(volume, str(tmp_path / "perfusion.nii.gz"))).convert("RGB"))
    body = rgb[40:]  # below the caption (grey text on a dark grey sheet)
    assert np.array_equal(body[..., 0], body[..., 1]) and np.array_equal(body[..., 1], body[..., 2])


def test_a_colour_picture_keeps_its_channels():
    picture = np.zeros((20, 30, 3), np.uint8)
    picture[..., 0] = 200  # red
    volume = Volume(picture.transpose(1, 0, 2)[:, :, None, :], spacing=(0.5, 0.5, 1.0), meta={"axis4": "channel"})
    (panel,), _ = display_panels(volume)
    np.testing.assert_array_equal(panel, picture)
