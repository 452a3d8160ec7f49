"""2D resizing: a box drawn in the source is found at its rescaled place; geometry stays in world space.

The references are analytic: a box of known pixel edges drawn into a generated
image, a linear ramp (which an interpolating filter must reproduce), and the
world position of the box centre before and after.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest

from medconv import Volume
from medconv.errors import NotApplicableError, UnreadableFileError, UsageError
from medconv.transforms.resize2d import (Box, Interpolation, Resize2D, ResizeFrame, parse_size, read_box_csv,
                                         rescale_box, rescale_box_rows, write_box_csv)


def picture(rows: int, columns: int, box: Box, value: int = 1000, dtype=np.uint16) -> np.ndarray:
    """A (rows, columns) image, 0 except ``value`` inside ``box`` (pixel edges: columns x .. x + width - 1)."""
    image = np.zeros((rows, columns), dtype=dtype)
    image[int(box.y) : int(box.y + box.height), int(box.x) : int(box.x + box.width)] = value
    return image


def as_volume(image: np.ndarray, spacing=(0.2, 0.2), kind="intensity") -> Volume:
    return Volume(image.T[:, :, None], spacing=(*spacing, 1.0), origin=(-30.0, 12.0, 5.0), kind=kind)


def found_box(volume: Volume, threshold: float) -> Box:
    """The pixel-edge extent of the pixels above ``threshold`` in a (i, j, 1) volume."""
    rows, columns = np.nonzero(volume.array[:, :, 0].T > threshold)
    return Box(columns.min(), rows.min(), columns.max() + 1 - columns.min(), rows.max() + 1 - rows.min())


def assert_same_box(found: Box, expected: Box, tolerance: float = 1.0):
    for name in ("x", "y", "width", "height"):
        assert abs(getattr(found, name) - getattr(expected, name)) <= tolerance, (name, found, expected)


@pytest.mark.parametrize("size, keep_aspect", [
    pytest.param("512", True, id="512-aspect-kept"),
    pytest.param("512x512", False, id="512x512-stretched"),
    pytest.param("256x384", True, id="256x384-aspect-kept"),
])
@pytest.mark.parametrize("kind", ["intensity", "label"])
def test_a_drawn_box_lands_on_its_rescaled_box(size, keep_aspect, kind):
    source_box = Box(300, 100, 120, 80)
    image = picture(400, 600, source_box, value=1 if kind == "label" else 1000,
                    dtype=np.uint8 if kind == "label" else np.uint16)
    resized = Resize2D(parse_size(size), keep_aspect=keep_aspect)(as_volume(image, kind=kind))
    frame = ResizeFrame.from_meta(resized.meta["resize"])
    expected = rescale_box(source_box, frame)
    assert resized.shape[:2] == parse_size(size) and resized.array.dtype == image.dtype
    assert_same_box(found_box(resized, 500 if kind == "intensity" else 0), expected)
    if kind == "label":
        assert set(np.unique(resized.array)) <= {0, 1}
    if keep_aspect:
        assert frame.scale[0] == pytest.approx(frame.scale[1], rel=5e-3)


def test_box_centre_keeps_its_world_position():
    source_box = Box(300, 100, 120, 80)
    volume = as_volume(picture(400, 600, source_box), spacing=(0.15, 0.25))
    resized = Resize2D((512, 512))(volume)
    expected = rescale_box(source_box, ResizeFrame.from_meta(resized.meta["resize"]))
    # centre of the box in continuous voxel indices: pixel edge e is index e - 0.5
    before = volume.affine_lps @ [source_box.x + source_box.width / 2 - 0.5, source_box.y + source_box.height / 2 - 0.5,
                                  0, 1]
    after = resized.affine_lps @ [expected.x + expected.width / 2 - 0.5, expected.y + expected.height / 2 - 0.5, 0, 1]
    np.testing.assert_allclose(after, before, atol=1e-9)
    np.testing.assert_allclose(resized.spacing[:2], (0.15 / (512 / 600), 0.25 / (512 / 600)), rtol=5e-3)


def test_padding_is_centred_and_recorded():
    resized = Resize2D(512)(as_volume(np.ones((400, 600), np.uint8), spacing=(0.2, 0.2)))
    frame = resized.meta["resize"]
    assert frame["padding"] == [0, 85, 0, 86] and frame["output_size"] == [512, 512]  # 600x400 -> 512x341
    plane = resized.array[:, :, 0].T
    assert not plane[:85].any() and not plane[85 + 341 :].any() and plane[85 : 85 + 341].all()
    assert "resize 600x400 -> 512x512" in resized.history[-1]


@pytest.mark.parametrize("interpolation", [Interpolation.LINEAR, Interpolation.CUBIC, Interpolation.LANCZOS,
                                           Interpolation.AREA])
def test_interpolating_filters_reproduce_a_ramp(interpolation):
    columns = 400
    ramp = np.tile(np.arange(columns, dtype=np.float32) * 10.0, (50, 1))  # value = 10 * column index
    resized = Resize2D((100, 50), keep_aspect=False, interpolation=interpolation)(as_volume(ramp))
    out = resized.array[:, 0, 0]
    centres = (np.arange(100) + 0.5) * (columns / 100) - 0.5  # input index under each output centre
    inner = slice(4, -4)  # the filters' support is cut at the borders
    np.testing.assert_allclose(out[inner], 10.0 * centres[inner], atol=1e-2)


def test_linear_keeps_integer_values_in_range():
    image = np.random.default_rng(1).integers(100, 4000, (300, 200)).astype(np.uint16)
    resized = Resize2D((64, 64), keep_aspect=False)(as_volume(image))
    assert resized.array.dtype == np.uint16 and 100 <= resized.array.min() and resized.array.max() <= 4000


def test_colour_images_resize_per_channel():
    rgb = np.zeros((40, 60, 3), np.uint8)
    rgb[..., 0], rgb[..., 2] = 200, 50
    volume = Volume(rgb.transpose(1, 0, 2)[:, :, None, :], spacing=(1, 1, 1), meta={"axis4": "channel"})
    resized = Resize2D((30, 20), keep_aspect=False)(volume)
    assert resized.shape == (30, 20, 1, 3)
    assert np.all(resized.array[..., 0] == 200) and np.all(resized.array[..., 1] == 0)


def test_two_resizes_compose_into_one_frame():
    source_box = Box(300, 100, 120, 80)
    twice = Resize2D(256)(Resize2D((512, 512))(as_volume(picture(400, 600, source_box))))
    assert_same_box(found_box(twice, 500), rescale_box(source_box, ResizeFrame.from_meta(twice.meta["resize"])))


def test_volumes_with_slices_and_bad_sizes_are_refused():
    with pytest.raises(NotApplicableError, match="3 slices"):
        Resize2D(64)(Volume(np.zeros((10, 10, 3)), spacing=(1, 1, 1)))
    for bad in ("0", "512x", "abc", "1x2x3"):
        with pytest.raises(UsageError):
            parse_size(bad)
    with pytest.raises(UsageError, match="interpolation"):
        Resize2D(64, interpolation="sinc")


def test_rsna_box_table_is_rescaled_and_written(tmp_path):
    labels = tmp_path / "stage_2_train_labels.csv"
    labels.write_text("patientId,x,y,width,height,Target\n"
                      "0004cfab-14fd-4e49-80ba-63a80b6bddd6,,,,,0\n"
                      "00436515-870c-4b36-a041-de91049b9ab4,264.0,152.0,213.0,379.0,1\n"
                      "00436515-870c-4b36-a041-de91049b9ab4,562.0,152.0,256.0,453.0,1\n")
    table = read_box_csv(labels)
    assert table.columns == ("patientId", "x", "y", "width", "height", "Target")
    frame = Resize2D(512).frame_for(1024, 1024)  # RSNA images are 1024 x 1024: scale 0.5, no padding
    rows = [row for image_id in ("0004cfab-14fd-4e49-80ba-63a80b6bddd6", "00436515-870c-4b36-a041-de91049b9ab4")
            for row in rescale_box_rows(table.for_image(image_id), frame, table)]
    write_box_csv(tmp_path / "out" / "boxes.csv", table.columns, rows)
    with open(tmp_path / "out" / "boxes.csv", newline="") as handle:
        written = list(csv.reader(handle))
    assert written == [["patientId", "x", "y", "width", "height", "Target"],
                       ["0004cfab-14fd-4e49-80ba-63a80b6bddd6", "", "", "", "", "0"],
                       ["00436515-870c-4b36-a041-de91049b9ab4", "132", "76", "106.5", "189.5", "1"],
                       ["00436515-870c-4b36-a041-de91049b9ab4", "281", "76", "128", "226.5", "1"]]


def test_half_filled_box_rows_and_missing_columns_are_errors(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("patientId,x,y,width,height\na,1,2,x,4\n")
    with pytest.raises(UnreadableFileError, match="line 2"):
        read_box_csv(bad)
    other = tmp_path / "other.csv"
    other.write_text("image,x0,y0\n")
    with pytest.raises(UsageError, match="patientId"):
        read_box_csv(other)


def test_the_cli_default_box_id_column_is_the_library_default():
    """The CLI keeps its own copy (importing the resize module would slow ``--help``): it must not drift."""
    from medconv.cli.image2d_options import BOX_ID_COLUMN as CLI_DEFAULT
    from medconv.transforms.box_export import BoxSource
    from medconv.transforms.resize2d import BOX_ID_COLUMN

    assert CLI_DEFAULT == BOX_ID_COLUMN == BoxSource("t.csv").id_column
