"""Visual QA: a small PNG per output with three orthogonal slices, and an ``index.html`` contact sheet.

Each picture shows an axial, a coronal and a sagittal slice in the radiological
display convention, whatever the volume's storage order: the volume is first
permuted/flipped to its closest LPS axes (no interpolation), then

* axial: patient right on the picture's left, anterior at the top;
* coronal: patient right on the left, superior at the top;
* sagittal: anterior on the left, superior at the top;

and every edge is labelled with its anatomical direction, so a flipped or
swapped volume is visible at a glance. A 2D image (one slice: a radiograph, a
photo, a mask) is shown as itself, one panel as stored (row ``j`` = 0 at the top,
as its PNG output), colour kept and 8-bit display values as they are. Pixels keep
their physical aspect ratio.
The slices of an image go through its middle; those of a label map, and of an
image with its label map drawn over it, through the largest connected labelled
region (an off-centre nodule, one of two lungs). The caption, wrapped to the
picture's width and never cut, names the voxel the slices go through in the
output's own (i, j, k) and says when a reader repaired the grid (a tilted
series stays oblique on purpose).
Intensities: CT (``modality`` CT or ``units`` HU) in a soft-tissue window (level 40,
width 400 HU); anything else between its 1st and 99th percentiles. Label maps are
drawn in colour; when an image and a label map of the same grid are both in the
run (LUNA16's ``subset0/X`` and ``seg-lungs-LUNA16/X``, Sliver07's ``liver-orig001``
and ``liver-seg001``, the Decathlon's ``imagesTr/X`` and ``labelsTr/X``), the index
shows the labels over the image, read back from the two outputs.
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import re
from collections import defaultdict
from typing import Iterable

import numpy as np

from .errors import MedconvError

#: Longest side of one panel, in pixels.
PANEL_SIZE = 192
SOFT_TISSUE = (40.0, 400.0)
#: Name tokens that mark an image or a label map; dropped when pairing the two.
PAIR_TOKENS = {"seg", "segmentation", "mask", "masks", "label", "labels", "gt", "orig", "image", "images", "img",
               "ct", "vol", "volume", "lungs", "luna16"}
_PALETTE = np.array([[0, 0, 0], [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48],
                     [145, 30, 180], [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 212]], dtype=np.uint8)
_SUFFIXES = (".nii.gz", ".nii", ".npz", ".nrrd", ".nhdr", ".mha", ".mhd")
_VIEWS = (("axial", "R", "L", "A", "P"), ("coronal", "R", "L", "S", "I"), ("sagittal", "A", "P", "S", "I"))


def _strip_suffix(path: str) -> str:
    for suffix in _SUFFIXES:
        if path.lower().endswith(suffix):
            return path[: -len(suffix)]
    return os.path.splitext(path)[0]


def _lps_view(volume):
    """The spatial array permuted/flipped to closest-LPS axes, its spacing, and the nibabel transform used."""
    from nibabel.orientations import apply_orientation, axcodes2ornt, io_orientation, ornt_transform

    array = np.asarray(volume.array)
    if array.ndim == 4:
        array = array[..., 0]
    if array.ndim == 2:
        array = array[:, :, None]
    # nibabel's orientation tools work in RAS; asking for "LPS" gives axes pointing to L, P, S
    transform = ornt_transform(io_orientation(volume.affine_ras), axcodes2ornt("LPS"))
    lps = apply_orientation(array, transform)
    spacing = np.empty(3)
    for axis, (target, _) in enumerate(transform):
        spacing[int(target)] = volume.spacing[axis]
    return lps, spacing, transform, array.shape


def _volume_index(lps_index, transform, shape) -> tuple[int, ...]:
    """The volume's own (i, j, k) of a voxel given by its closest-LPS index (the inverse of ``_lps_view``)."""
    index = []
    for axis, (target, flip) in enumerate(transform):
        q = int(lps_index[int(target)])
        index.append(shape[axis] - 1 - q if flip < 0 else q)
    return tuple(index)


#: The one view of a 2D image: the picture as stored (row j = 0 at the top), no anatomical edge letters.
PLANAR_VIEWS = (("image", "", "", "", ""),)
#: ``meta["axis4"]`` of a 4th axis that holds a picture's colour channels (RGB, grey + alpha). Any other 4th axis
#: (time, echo, diffusion volumes) is shown by its first volume, never mixed into false colours.
COLOUR_AXIS4 = "channel"


def is_planar(volume) -> bool:
    """A 2D image (one slice, ``(i, j, 1)`` or ``(i, j, 1, c)``): its preview is the image itself."""
    return volume.spatial_shape[2] == 1


def views_of(volume) -> tuple:
    """The views of a preview: the picture itself for a 2D image, else axial, coronal and sagittal."""
    return PLANAR_VIEWS if is_planar(volume) else _VIEWS


def display_panels(volume, focus: tuple[int, int, int] | None = None
                   ) -> tuple[list[np.ndarray], list[tuple[float, float]]]:
    """The three slices through ``focus`` (closest-LPS index; default the middle) in display order, and pixel sizes
    (one panel for a 2D image, below).

    Returns ``([axial, coronal, sagittal], [(row_mm, col_mm), ...])``; rows run top->bottom, columns left->right.
    A 2D image gives one panel, the picture as stored (row ``j``, column ``i``; colour channels kept), as its
    PNG output shows it; a one-slice series along a 4th axis that is not colour gives its first volume.
    """
    if is_planar(volume):
        array = np.asarray(volume.array)
        if array.ndim == 4 and volume.meta.get("axis4") != COLOUR_AXIS4:
            array = array[..., 0]  # one slice of a time / echo / volume series: its first volume, as in 3D
        plane = array[:, :, 0].T if array.ndim == 3 else array[:, :, 0, :].transpose(1, 0, 2)
        return [plane], [(volume.spacing[1], volume.spacing[0])]
    lps, spacing, _, _ = _lps_view(volume)
    x, y, z = focus if focus is not None else (n // 2 for n in lps.shape)
    axial = lps[:, :, z].T  # rows: A->P, columns: R->L
    coronal = lps[:, y, :].T[::-1]  # rows: S->I, columns: R->L
    sagittal = lps[x, :, :].T[::-1]  # rows: S->I, columns: A->P
    sizes = [(spacing[1], spacing[0]), (spacing[2], spacing[0]), (spacing[2], spacing[1])]
    return [axial, coronal, sagittal], sizes


def label_focus(volume) -> tuple[int, int, int] | None:
    """Closest-LPS index of a voxel of the largest connected labelled region, nearest its centroid; ``None`` if empty.

    The three slices through it all cut that region (a nodule off the middle of
    the volume, one lung of two). Connectivity: faces (6-neighbours), SimpleITK.
    """
    import SimpleITK as sitk

    lps = _lps_view(volume)[0]
    mask = np.ascontiguousarray(lps != 0, dtype=np.uint8)
    if not mask.any():
        return None
    components = sitk.RelabelComponent(sitk.ConnectedComponent(sitk.GetImageFromArray(mask.T)), sortByObjectSize=True)
    largest = np.argwhere(sitk.GetArrayViewFromImage(components).T == 1)  # (x, y, z) of its voxels
    nearest = largest[np.argmin(((largest - largest.mean(axis=0)) ** 2).sum(axis=1))]
    return tuple(int(v) for v in nearest)


def focus_caption(volume, focus: tuple[int, int, int] | None, why: str) -> str:
    """``"slices through voxel (i, j, k) = (3, 40, 12) (why)"`` in the volume's own index order."""
    if is_planar(volume):
        return "a 2D image, shown like its PNG: row j = 0 at the top, column i = 0 on the left"
    lps, _, transform, shape = _lps_view(volume)
    if focus is None:
        focus = tuple(n // 2 for n in lps.shape)
    i, j, k = _volume_index(focus, transform, shape)
    return f"slices through voxel (i, j, k) = ({i}, {j}, {k}), {why}"


def repair_caption(volume) -> str | None:
    """What a reader did to the grid, for a caption: a tilted series looks oblique on purpose."""
    flags = set(volume.meta.get("geometry_flags") or ())
    done = []
    if "tilt" in flags:
        done.append("gantry tilt repaired: resampled onto an orthogonal grid, oblique like the acquisition")
    if flags & {"uneven", "gap"}:
        done.append("slice spacing repaired: resampled onto a regular grid")
    return "; ".join(done) or None


def intensity_range(volume) -> tuple[float, float]:
    """The display window: soft tissue for CT, 0..255 for an 8-bit 2D image (display values already), else the
    1st-99th percentiles (of a sample)."""
    meta = volume.meta
    if is_planar(volume) and np.asarray(volume.array).dtype == np.uint8:
        return 0.0, 255.0
    units = meta.get("units")
    if units == "HU" or (units is None and str(meta.get("modality", "")).upper() == "CT"):
        level, width = SOFT_TISSUE
        return level - width / 2, level + width / 2
    array = np.asarray(volume.array)
    step = max(1, int(np.ceil((array.size / 1_000_000) ** (1 / array.ndim))))
    sample = array[(slice(None, None, step),) * array.ndim].astype(np.float64).reshape(-1)  # no full copy
    sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        return 0.0, 1.0
    low, high = np.percentile(sample, [1, 99])
    return float(low), float(high if high > low else low + 1)


def _to_grey(panel: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    low, high = window
    scaled = (np.nan_to_num(panel.astype(np.float64), nan=low) - low) / (high - low)
    return (np.clip(scaled, 0, 1) * 255).astype(np.uint8)


def _grey_or_colour(panel: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    """A panel as RGB: grey repeated, or a 2D colour image's first three channels (grey + alpha: the grey)."""
    if panel.ndim == 3:
        channels = panel[..., :3] if panel.shape[2] >= 3 else np.repeat(panel[..., :1], 3, axis=2)
        return _to_grey(channels, window)
    return np.repeat(_to_grey(panel, window)[..., None], 3, axis=2)


def _label_rgb(panel: np.ndarray) -> np.ndarray:
    values = np.asarray(panel).astype(np.int64)
    colours = _PALETTE[1:][(values - 1) % (len(_PALETTE) - 1)]
    colours[values == 0] = 0
    return colours


#: Pixels per line of caption text (PIL's default bitmap font is 11 px high).
LINE_HEIGHT = 13


def wrap_caption(lines: Iterable[str], width_px: int, draw) -> list[str]:
    """Caption lines broken at spaces (or anywhere in a long word) so that none is wider than ``width_px``."""
    wrapped = []
    for line in lines:
        current = ""
        for word in line.split(" "):
            candidate = f"{current} {word}" if current else word
            if draw.textlength(candidate) <= width_px:
                current = candidate
                continue
            if current:
                wrapped.append(current)
            while len(word) > 1 and draw.textlength(word) > width_px:  # a word wider than the picture
                cut = len(word) - 1
                while cut > 1 and draw.textlength(word[:cut]) > width_px:
                    cut -= 1
                wrapped.append(word[:cut])
                word = word[cut:]
            current = word
        wrapped.append(current)
    return wrapped


def _compose(panels_rgb: list[np.ndarray], sizes, caption: list[str], views=_VIEWS):
    """The panels (one per view of ``views``) side by side at physical aspect, edges labelled, the caption above
    them (wrapped, never cut)."""
    from PIL import Image, ImageDraw

    pictures = []
    for rgb, (row_mm, col_mm) in zip(panels_rgb, sizes):
        height_mm, width_mm = rgb.shape[0] * row_mm, rgb.shape[1] * col_mm
        scale = PANEL_SIZE / max(height_mm, width_mm)
        size = (max(1, round(width_mm * scale)), max(1, round(height_mm * scale)))
        pictures.append(Image.fromarray(rgb, "RGB").resize(size, Image.NEAREST))
    margin = 14
    width = sum(p.width for p in pictures) + margin * (2 * len(pictures))
    lines = wrap_caption(caption, width - 8, ImageDraw.Draw(Image.new("RGB", (1, 1))))
    top = 4 + LINE_HEIGHT * len(lines)
    height = max(p.height for p in pictures) + 2 * margin + top
    sheet = Image.new("RGB", (width, height), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    for number, line in enumerate(lines):
        draw.text((4, 2 + LINE_HEIGHT * number), line, fill=(230, 230, 230) if number == 0 else (190, 190, 190))
    x = margin
    for picture, (view, left, right, up, down) in zip(pictures, views):
        y = top + margin
        sheet.paste(picture, (x, y))
        mid_x, mid_y = x + picture.width // 2, y + picture.height // 2
        colour = (255, 210, 0)
        draw.text((x - 10, mid_y - 5), left, fill=colour)
        draw.text((x + picture.width + 3, mid_y - 5), right, fill=colour)
        draw.text((mid_x - 3, y - 12), up, fill=colour)
        draw.text((mid_x - 3, y + picture.height + 1), down, fill=colour)
        draw.text((x + 2, y + 2), view, fill=(160, 160, 160))
        x += picture.width + 2 * margin
    return sheet


def caption_lines(volume, name: str, focus, why: str) -> list[str]:
    """The caption of one picture: name, shape, axes and kind; where the slices are; what repaired the grid."""
    lines = [f"{name}  {'x'.join(map(str, volume.shape))}  {volume.axis_codes}  {volume.kind}",
             focus_caption(volume, focus, why)]
    repaired = repair_caption(volume)
    if repaired:
        lines.append(repaired)
    return lines


def write_unit_preview(volume, output_like: str) -> str:
    """Write ``<output stem>.png`` (and hidden display slices for overlays) for one volume; returns the PNG path.

    ``output_like`` is the output's path inside the preview folder (its suffix is replaced).
    """
    stem = _strip_suffix(output_like)
    os.makedirs(os.path.dirname(stem) or ".", exist_ok=True)
    focus = label_focus(volume) if volume.kind == "label" else None
    panels, sizes = display_panels(volume, focus)
    if volume.kind == "label":
        rgb = [_label_rgb(panel) for panel in panels]
    else:
        window = intensity_range(volume)
        rgb = [_grey_or_colour(panel, window) for panel in panels]
    why = "the largest labelled region" if focus is not None else "the middle of the volume"
    png = stem + ".png"
    caption = caption_lines(volume, os.path.basename(stem), focus, why)
    _compose(rgb, sizes, caption, views_of(volume)).save(png, optimize=True)
    info = {"shape": list(volume.spatial_shape), "affine": np.round(volume.affine_ras, 3).tolist(),
            "kind": volume.kind, "axes": volume.axis_codes, "spacing": [round(s, 4) for s in volume.spacing],
            "sizes": [list(map(float, s)) for s in sizes], "caption": caption}
    np.savez_compressed(slices_path(stem), info=np.asarray(json.dumps(info)))
    return png


def remove_unit_preview(output_like: str) -> None:
    """Remove what :func:`write_unit_preview` wrote for ``output_like`` (a unit whose outputs were withdrawn)."""
    stem = _strip_suffix(output_like)
    for path in (stem + ".png", slices_path(stem)):
        with contextlib.suppress(OSError):
            os.remove(path)


def slices_path(stem: str) -> str:
    """Where the display slices of a preview are kept for overlays: a hidden file, so no reader discovers it."""
    folder, name = os.path.split(stem)
    return os.path.join(folder, f".{name}.slices.npz")


def pair_key(relative_stem: str) -> str:
    """The name an image and its label map share once tokens such as ``seg``/``orig``/``mask`` are dropped."""
    name = relative_stem.rsplit("/", 1)[-1].lower()
    tokens = [t for t in re.findall(r"[a-z]+|\d+", name) if t not in PAIR_TOKENS]
    return "-".join(tokens)


def _load_info(path: str) -> dict:
    with np.load(path) as data:
        return json.loads(str(data["info"]))


def find_pairs(preview_dir: str, stems: Iterable[str]) -> dict[str, str]:
    """``{image stem: label stem}`` for image/label previews that share a pair key and a grid."""
    by_key: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    infos = {}
    for stem in stems:
        path = slices_path(os.path.join(preview_dir, *stem.split("/")))
        if not os.path.isfile(path):
            continue
        info = _load_info(path)
        infos[stem] = info
        by_key[pair_key(stem)][info["kind"]].append(stem)
    pairs = {}
    for kinds in by_key.values():
        images, labels = kinds.get("intensity", []), kinds.get("label", [])
        if len(images) == 1 and len(labels) == 1:
            image, label = images[0], labels[0]
            if infos[image]["shape"] == infos[label]["shape"] and np.allclose(
                    infos[image]["affine"], infos[label]["affine"], atol=1e-2):
                pairs[image] = label
    return pairs


def write_overlay(preview_dir: str, image_stem: str, label_stem: str, image_output: str,
                  label_output: str) -> tuple[str, list[str]]:
    """``<image stem>.overlay.png``: the label map in colour (40 % opacity) over the image, through its largest region.

    Both outputs are read back (they share one grid: :func:`find_pairs` checked
    it), so the slices go through the region wherever it lies, not the middle.
    """
    from .api import read

    image, label = read(image_output), read(label_output)
    focus = label_focus(label)
    grey_panels, sizes = display_panels(image, focus)
    label_panels, _ = display_panels(label, focus)
    window = intensity_range(image)
    panels = []
    for grey, labels in zip(grey_panels, label_panels):
        rgb = _grey_or_colour(grey, window).astype(np.float64)
        colour = _label_rgb(labels).astype(np.float64)
        panels.append(np.where((labels != 0)[..., None], 0.6 * rgb + 0.4 * colour, rgb).astype(np.uint8))
    name = f"{image_stem.rsplit('/', 1)[-1]} + {label_stem.rsplit('/', 1)[-1]}"
    why = "the largest region of the labels" if focus is not None else "the middle (the labels are empty)"
    path = os.path.join(preview_dir, *image_stem.split("/")) + ".overlay.png"
    caption = caption_lines(image, name, focus, why)
    _compose(panels, sizes, caption, views_of(image)).save(path, optimize=True)
    return path, caption


def write_index(preview_dir: str, relatives: Iterable[str]) -> str:
    """Write overlays for image/label pairs and ``index.html``, a contact sheet of every preview of the run."""
    relatives = list(relatives)
    output_of = {_strip_suffix(relative): os.path.join(os.path.dirname(os.path.abspath(preview_dir)),
                                                       *relative.split("/")) for relative in relatives}
    stems = list(output_of)
    present = [stem for stem in stems if os.path.isfile(os.path.join(preview_dir, *stem.split("/")) + ".png")]
    pairs = find_pairs(preview_dir, present)
    overlays: dict[str, list[str]] = {}
    for image, label in pairs.items():
        try:
            overlays[image] = write_overlay(preview_dir, image, label, output_of[image], output_of[label])[1]
        except MedconvError:  # an output format medconv cannot read back (e.g. NRRD): no overlay for this pair
            continue
    figures = []
    for stem in present:
        picture = stem + (".overlay.png" if stem in overlays else ".png")
        lines = overlays.get(stem) or _load_info(slices_path(os.path.join(preview_dir, *stem.split("/")))).get(
            "caption", [stem])
        caption = "<br>".join(html.escape(line) for line in lines)
        figures.append(f'<figure><a href="{html.escape(picture)}"><img src="{html.escape(picture)}" loading="lazy"></a>'
                       f"<figcaption>{caption}</figcaption></figure>")
    page = ("<!doctype html><meta charset='utf-8'><title>medconv preview</title>"
            "<style>body{background:#181818;color:#ddd;font:13px sans-serif}figure{display:inline-block;margin:6px;"
            "vertical-align:top}img{max-width:640px}figcaption{max-width:640px;word-break:break-all}</style>"
            f"<h1>medconv preview: {len(present)} output(s)</h1>"
            "<p>Radiological display: axial and coronal show the patient's right on the left; "
            "sagittal shows anterior on the left. Edge letters name the anatomical direction.</p>"
            + "\n".join(figures))
    path = os.path.join(preview_dir, "index.html")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(page)
    return path
