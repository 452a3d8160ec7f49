"""2D datasets and PET through the batch CLI: dcm2png, convert --format png, --size, --boxes, --voi, --pet.

Generated trees reproduce the public datasets' layout: RSNA Pneumonia
(``stage_2_train_images/<patientId>.dcm``, DX FOR PRESENTATION written tag by
tag with pydicom, MONOCHROME1 among them, and ``stage_2_train_labels.csv``),
Shenzhen (``CXR_png/`` + ``mask/``), DRIVE (RGB TIFF images, GIF masks), a PET
series (tests/test_suv.py's writer). References: a box drawn into each source
image and found again in the output; Pillow's reading of every PNG/GIF; pydicom's
``apply_voi_lut``; ``2^BitsStored - 1 - x`` for MONOCHROME1; the analytic SUV.
"""

from __future__ import annotations

import csv
import json

import nibabel as nib
import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.pixels import apply_voi_lut

from medconv.cli.main import main
from test_greyscale import radiograph
from test_image2d import _drive_like, _shenzhen_like
from test_suv import WEIGHT, analytic_suv, write_pet_series

ROWS, COLUMNS = 200, 300  # a landscape radiograph: --size pads it
#: (x, y, width, height) boxes in source pixel edges, two on the second image, none on the first
BOXES = {1: [(40, 30, 60, 50)], 2: [(150, 60, 80, 70), (20, 120, 50, 40)]}


def rsna_tree(root, count: int = 3):
    """``stage_2_train_images/<patientId>.dcm`` (12-bit DX, odd ones MONOCHROME1) and the labels CSV."""
    images = root / "stage_2_train_images"
    images.mkdir(parents=True)
    y, x = np.mgrid[0:ROWS, 0:COLUMNS]
    with open(root / "stage_2_train_labels.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["patientId", "x", "y", "width", "height", "Target"])
        for n in range(count):
            patient = f"0000000{n}-rsna-like"
            image = (1000 + 3 * x + y).astype(np.uint16)  # anatomy: a ramp below the window's top
            for bx, by, bw, bh in BOXES.get(n, []):
                image[by:by + bh, bx:bx + bw] = 4000  # the opacity the box marks, bright after the VOI
                writer.writerow([patient, bx, by, bw, bh, 1])
            if not BOXES.get(n):
                writer.writerow([patient, "", "", "", "", 0])
            monochrome1 = n % 2 == 1
            radiograph(images / f"{patient}.dcm", 4095 - image if monochrome1 else image,
                       photometric="MONOCHROME1" if monochrome1 else "MONOCHROME2", PatientID=patient,
                       WindowCenter=4095 - 2500 if monochrome1 else 2500, WindowWidth=3000,
                       PixelSpacing=[0.168, 0.168], SeriesDescription="view: PA")
    return images


def connected_boxes(png_path, threshold: int = 175) -> list[tuple[float, float, float, float]]:
    """The pixel-edge extent of each bright region (SimpleITK connected components)."""
    import SimpleITK as sitk

    mask = (np.asarray(Image.open(png_path)) > threshold).astype(np.uint8)
    labels = sitk.GetArrayFromImage(sitk.ConnectedComponent(sitk.GetImageFromArray(mask)))
    boxes = []
    for value in range(1, int(labels.max()) + 1):
        rows, columns = np.nonzero(labels == value)
        boxes.append((columns.min(), rows.min(), columns.max() + 1 - columns.min(), rows.max() + 1 - rows.min()))
    return boxes


def manifest(folder) -> list[dict]:
    return [json.loads(line) for line in (folder / "medconv-manifest.jsonl").read_text().splitlines()]


# -- RSNA-like: DICOM radiographs and boxes -------------------------------------------------------

@pytest.mark.parametrize("size, keep_aspect", [("128", "yes"), ("96x160", "no")])
def test_rsna_like_tree_boxes_land_on_the_same_anatomy(tmp_path, size, keep_aspect):
    images = rsna_tree(tmp_path / "rsna")
    out = tmp_path / "png"
    code = main(["dcm2png", str(images), str(out), "--size", size, "--keep-aspect", keep_aspect, "--boxes",
                 str(tmp_path / "rsna" / "stage_2_train_labels.csv"), "-q", "-j", "1"])
    assert code == 0
    with open(out / "boxes.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["patientId"] for row in rows] == ["00000000-rsna-like", "00000001-rsna-like", "00000002-rsna-like",
                                                  "00000002-rsna-like"]
    assert rows[0]["x"] == "" and rows[0]["Target"] == "0" and not (out / "boxes-unmatched.csv").exists()
    for row in rows[1:]:
        png = out / row["output"]
        width, height = (int(v) for v in (size.split("x") if "x" in size else (size, size)))
        assert Image.open(png).size == (width, height) and Image.open(png).mode == "L"
        expected = tuple(float(row[key]) for key in ("x", "y", "width", "height"))
        found = [box for box in connected_boxes(png) if abs(box[0] - expected[0]) <= 2]
        assert len(found) == 1, (row, connected_boxes(png))
        assert np.allclose(found[0], expected, atol=1.0), (found[0], expected)  # half-way threshold: within 1 px
    # the box column values are the source boxes through the recorded frame, and nothing else changed
    source = list(csv.DictReader(open(tmp_path / "rsna" / "stage_2_train_labels.csv", newline="")))
    assert [r["Target"] for r in rows] == [r["Target"] for r in source]


def test_rsna_like_png_values_are_pydicoms_voi_and_monochrome1_is_shown_once(tmp_path):
    images = rsna_tree(tmp_path / "rsna", count=2)
    out = tmp_path / "png"
    assert main(["dcm2png", str(images), str(out), "-q", "-j", "1"]) == 0
    for path in sorted(images.glob("*.dcm")):
        ds = pydicom.dcmread(path)
        voi = apply_voi_lut(ds.pixel_array, ds)  # onto 0..4095 (no rescale)
        shown = np.floor(voi / 4095.0 * 255 + 0.5)
        if ds.PhotometricInterpretation == "MONOCHROME1":
            shown = 255 - shown
        png = np.asarray(Image.open(out / f"{path.stem}.png")).astype(np.float64)
        assert np.abs(png - shown).max() <= 1 and np.mean(png == shown) > 0.999
    # the box's opacity is bright in the MONOCHROME1 image too (inverted once)
    assert np.asarray(Image.open(out / "00000001-rsna-like.png"))[35, 45] == 255
    sidecar = json.loads((out / "00000001-rsna-like.json").read_text())["meta"]["dicom"]
    assert sidecar["greyscale"]["voi"]["kind"] == "file-window" and sidecar["greyscale"]["presentation"] == "INVERSE"
    assert sidecar["PixelSpacingSource"] == "PixelSpacing"


def test_rerun_resumes_and_rewrites_the_same_boxes(tmp_path):
    images = rsna_tree(tmp_path / "rsna")
    labels = str(tmp_path / "rsna" / "stage_2_train_labels.csv")
    command = ["dcm2png", str(images), str(tmp_path / "png"), "--size", "64", "--boxes", labels, "-q", "-j", "1"]
    assert main(command) == 0
    first = (tmp_path / "png" / "boxes.csv").read_text()
    assert main(command) == 0
    assert {row["status"] for row in manifest(tmp_path / "png")} == {"skipped"}
    assert (tmp_path / "png" / "boxes.csv").read_text() == first


def test_box_rows_of_images_not_converted_are_listed_not_dropped(tmp_path):
    images = rsna_tree(tmp_path / "rsna", count=2)
    labels = tmp_path / "rsna" / "stage_2_train_labels.csv"
    with open(labels, "a", newline="") as handle:
        csv.writer(handle).writerow(["not-in-src", 1, 2, 3, 4, 1])
    assert main(["dcm2png", str(images), str(tmp_path / "png"), "--boxes", str(labels), "-q", "-j", "1"]) == 0
    (unmatched,) = list(csv.DictReader(open(tmp_path / "png" / "boxes-unmatched.csv", newline="")))
    assert unmatched["patientId"] == "not-in-src" and "no converted image" in unmatched["reason"]
    moved = list(csv.DictReader(open(tmp_path / "png" / "boxes.csv", newline="")))
    assert [(r["x"], r["y"]) for r in moved[1:]] == [("40", "30")]  # no --size: the boxes as they were


def test_convert_to_png_keeps_modality_values_lossless(tmp_path):
    images = rsna_tree(tmp_path / "rsna", count=2)
    out = tmp_path / "png16"
    assert main(["convert", str(images), str(out), "--format", "png", "--name", "{file}", "-q", "-j", "1"]) == 0
    for path in sorted(images.glob("*.dcm")):
        ds = pydicom.dcmread(path)
        png = np.asarray(Image.open(out / f"{path.stem}.png"))
        expected = ds.pixel_array.astype(np.int64)
        if ds.PhotometricInterpretation == "MONOCHROME1":
            expected = (2 ** ds.BitsStored - 1) - expected  # inverted by bit depth, not by the data's maximum
        assert png.dtype == np.uint16
        np.testing.assert_array_equal(png, expected)
    # the same with --voi: 8-bit display values
    assert main(["convert", str(images), str(tmp_path / "png8"), "--format", "png", "--voi", "file", "-q",
                 "-j", "1"]) == 0
    assert {Image.open(p).mode for p in (tmp_path / "png8").rglob("*.png")} == {"L"}


@pytest.mark.parametrize("arguments, message", [
    pytest.param(["--voi", "modality", "--voi-index", "2"], "--voi-index", id="index-without-file-voi"),
    pytest.param(["--voi", "wide"], "--voi", id="unknown-voi"),
    pytest.param(["--keep-aspect", "no"], "--size", id="keep-aspect-without-size"),
    pytest.param(["--size", "0"], "--size", id="size-zero"),
    pytest.param(["--box-columns", "x,y"], "--box-columns", id="two-box-columns"),
    pytest.param(["--box-id-column", "Image Index"], "--boxes", id="id-column-without-boxes"),
])
def test_option_mistakes_are_usage_errors(tmp_path, capsys, arguments, message):
    images = rsna_tree(tmp_path / "rsna", count=1)
    assert main(["dcm2png", str(images), str(tmp_path / "png"), *arguments]) == 2
    assert message in capsys.readouterr().err


def test_boxes_need_their_columns_and_the_sidecars(tmp_path, capsys):
    images = rsna_tree(tmp_path / "rsna", count=1)
    labels = str(tmp_path / "rsna" / "stage_2_train_labels.csv")
    assert main(["dcm2png", str(images), str(tmp_path / "a"), "--boxes", labels, "--box-id-column", "Image"]) == 2
    assert "no column 'Image'" in capsys.readouterr().err
    assert main(["dcm2png", str(images), str(tmp_path / "b"), "--boxes", labels, "--no-sidecar", "-q"]) == 2
    assert "--boxes needs the sidecars" in capsys.readouterr().err


# -- PNG datasets: Shenzhen-like and DRIVE-like ----------------------------------------------------

def test_shenzhen_like_folder_through_the_batch(tmp_path):
    _shenzhen_like(tmp_path / "shenzhen")
    out = tmp_path / "out"
    assert main(["convert", str(tmp_path / "shenzhen"), str(out), "--format", "png", "-q", "-j", "1"]) == 0
    rows = {row["unit_id"]: row for row in manifest(out)}
    assert {row["kind"] for uid, row in rows.items() if uid.startswith("mask/")} == {"label"}
    assert {row["kind"] for uid, row in rows.items() if uid.startswith("CXR_png/")} == {"intensity"}
    for source in (tmp_path / "shenzhen").rglob("*.png"):
        relative = source.relative_to(tmp_path / "shenzhen")
        np.testing.assert_array_equal(np.asarray(Image.open(out / relative)), np.asarray(Image.open(source)))
    # masks resized with nearest neighbour keep their values; the picture is 32 x 32
    assert main(["convert", str(tmp_path / "shenzhen"), str(tmp_path / "small"), "--format", "png", "--size", "32",
                 "-q", "-j", "1"]) == 0
    mask = np.asarray(Image.open(tmp_path / "small" / "mask" / "CHNCXR_0001_0_mask.png"))
    assert mask.shape == (32, 32) and set(np.unique(mask)) == {0, 255}


def test_drive_like_folder_tiff_images_and_gif_masks_through_the_batch(tmp_path):
    pytest.importorskip("tifffile")
    _drive_like(tmp_path / "drive")
    out = tmp_path / "out"
    assert main(["convert", str(tmp_path / "drive"), str(out), "--format", "png", "--labels", "mask", "--labels",
                 "1st_manual", "-q", "-j", "1"]) == 0
    rows = {row["unit_id"]: row for row in manifest(out)}
    assert len(rows) == 6 and {row["status"] for row in rows.values()} == {"converted"}
    for uid, row in rows.items():
        source = next((tmp_path / "drive").glob(uid + ".*"))
        written = np.asarray(Image.open(out / row["output"]))
        if source.suffix == ".gif":
            assert row["kind"] == "label", uid  # by the names given (the content never decides)
            np.testing.assert_array_equal(written, np.asarray(Image.open(source).convert("L")))
        else:
            import tifffile

            assert row["kind"] == "intensity"
            np.testing.assert_array_equal(written, tifffile.imread(source))



def test_rgb_to_gray_flag_makes_one_grey_channel(tmp_path):
    """--rgb-to-gray: 8-bit PNG colour equals Pillow's convert("L"); 16-bit TIFF colour the BT.601 formula in float64."""
    tifffile = pytest.importorskip("tifffile")
    rng = np.random.default_rng(7)
    (tmp_path / "src").mkdir()
    rgb8 = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    Image.fromarray(rgb8).save(tmp_path / "src" / "photo.png")
    rgb16 = rng.integers(0, 65536, (20, 30, 3), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "src" / "slide.tif", rgb16, photometric="rgb")
    out = tmp_path / "out"
    assert main(["convert", str(tmp_path / "src"), str(out), "--rgb-to-gray", "-q", "-j", "1"]) == 0
    photo = np.asanyarray(nib.load(out / "photo.nii.gz").dataobj)
    assert photo.shape == (30, 20, 1)  # (i, j, k): columns, rows, one slice; no channel axis
    np.testing.assert_array_equal(photo[:, :, 0].T, np.asarray(Image.fromarray(rgb8).convert("L")))
    slide = np.asanyarray(nib.load(out / "slide.nii.gz").dataobj)
    expected = np.rint(rgb16[..., 0] * 0.299 + rgb16[..., 1] * 0.587 + rgb16[..., 2] * 0.114).astype(np.uint16)
    assert slide.shape == (30, 20, 1)
    np.testing.assert_array_equal(slide[:, :, 0].T, expected)
    # without the flag the colour stays as channels
    assert main(["convert", str(tmp_path / "src"), str(tmp_path / "colour"), "-q", "-j", "1"]) == 0
    assert nib.load(tmp_path / "colour" / "photo.nii.gz").shape[-1] == 3

# -- PET through the CLI -------------------------------------------------------------------------

@pytest.mark.parametrize("decay, elapsed", [("START", 3750.0), ("ADMIN", 0.0)])
def test_tcia2nii_pet_suv_equals_the_analytic_value(tmp_path, decay, elapsed):
    write_pet_series(tmp_path / "in" / "pet", DecayCorrection=decay)
    assert main(["tcia2nii", str(tmp_path / "in"), str(tmp_path / "out"), "--pet", "suv", "-q", "-j", "1"]) == 0
    (row,) = manifest(tmp_path / "out")
    image = nib.load(tmp_path / "out" / row["output"])
    assert image.get_data_dtype() == np.float32
    np.testing.assert_allclose(np.asarray(image.dataobj), analytic_suv(elapsed), rtol=1e-4)
    assert image.header["descrip"].item().decode().endswith("SUVbw g/ml")
    sidecar = json.loads((tmp_path / "out" / row["output"].replace(".nii.gz", ".json")).read_text())
    assert sidecar["meta"]["units"] == "SUVbw g/ml" and sidecar["meta"]["dicom"]["suv"]["mass_g"] == WEIGHT * 1000
    # the default is unchanged: stored activity in Bq/ml
    assert main(["tcia2nii", str(tmp_path / "in"), str(tmp_path / "bqml"), "-q", "-j", "1"]) == 0
    (plain,) = manifest(tmp_path / "bqml")
    assert json.loads((tmp_path / "bqml" / plain["output"].replace(".nii.gz", ".json")).read_text())[
        "meta"]["units"] == "BQML"


@pytest.mark.parametrize("removed, tag", [("PatientWeight", "PatientWeight (0010,1030)"),
                                          ("RadionuclideTotalDose", "RadionuclideTotalDose (0018,1074)")])
def test_pet_series_without_weight_or_dose_fails_naming_the_tag(tmp_path, removed, tag):
    write_pet_series(tmp_path / "in" / "pet", **{removed: None})
    assert main(["tcia2nii", str(tmp_path / "in"), str(tmp_path / "out"), "--pet", "suv", "-q", "-j", "1"]) == 1
    (row,) = manifest(tmp_path / "out")
    assert row["status"] == "failed" and tag in row["reason"] and row["error_type"] == "header"


def test_chestxray14_like_pngs_and_nih_box_table(tmp_path):
    """NIH's BBox_List_2017.csv: ids with the .png suffix, box columns 'Bbox [x', 'y', 'w', 'h]' (one header cell
    split by its commas), trailing empty columns; a box drawn into the PNG is found at its rescaled place."""
    images = tmp_path / "cxr14" / "images_001" / "images"
    images.mkdir(parents=True)
    picture = np.full((256, 256), 40, np.uint8)
    picture[100:160, 30:110] = 250
    Image.fromarray(picture).save(images / "00013118_008.png")
    table = tmp_path / "cxr14" / "BBox_List_2017.csv"
    table.write_text("Image Index,Finding Label,Bbox [x,y,w,h],,,\n00013118_008.png,Atelectasis,30,100,80,60,,,\n")
    out = tmp_path / "out"
    assert main(["convert", str(tmp_path / "cxr14"), str(out), "--format", "png", "--size", "64", "--boxes",
                 str(table), "--box-id-column", "Image Index", "--box-columns", "Bbox [x,y,w,h]", "-q", "-j", "1"]) == 0
    (row,) = list(csv.reader(open(out / "boxes.csv", newline="")))[1:]
    assert row[:6] == ["00013118_008.png", "Atelectasis", "7.5", "25", "20", "15"]  # x 1/4
    assert row[-1] == "images_001/images/00013118_008.png"
    (found,) = connected_boxes(out / row[-1])
    assert np.allclose(found, (7.5, 25, 20, 15), atol=1.0)


def test_cbis_like_tree_keeps_its_folders_and_ambiguous_box_ids_are_not_guessed(tmp_path):
    """CBIS-DDSM: Secondary Captures of MG, every file named 1-1.dcm in its own folder: the outputs keep the tree
    ({file}), and a box id '1-1' that names both images goes to boxes-unmatched.csv with the reason."""
    from test_dicom_projection import SECONDARY_CAPTURE

    for case in ("Mass-Training_P_00001_LEFT_CC", "Mass-Training_P_00004_LEFT_MLO"):
        folder = tmp_path / "ddsm" / case / "07-20-2016-DDSM-74994" / "1.000000-full mammogram images-24515"
        folder.mkdir(parents=True)
        radiograph(folder / "1-1.dcm", np.full((20, 16), 3000, np.uint16), sop_class=SECONDARY_CAPTURE,
                   modality="MG", photometric="MONOCHROME2", PatientID=case)
    table = tmp_path / "boxes.csv"
    table.write_text("patientId,x,y,width,height\n1-1,1,2,3,4\n")
    out = tmp_path / "png"
    assert main(["dcm2png", str(tmp_path / "ddsm"), str(out), "--voi", "modality", "--boxes", str(table), "-q",
                 "-j", "1"]) == 0
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert written == [f"{case}/07-20-2016-DDSM-74994/1.000000-full mammogram images-24515/1-1.png"
                       .replace(" ", "_") for case in ("Mass-Training_P_00001_LEFT_CC", "Mass-Training_P_00004_LEFT_MLO")]
    assert all(np.asarray(Image.open(out / p)).max() == 3000 for p in written)  # 16-bit modality values
    (row,) = list(csv.DictReader(open(out / "boxes-unmatched.csv", newline="")))
    assert row["patientId"] == "1-1" and row["reason"].startswith("2 images of that name")
