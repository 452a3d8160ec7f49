"""Visual QA: a small PNG per output with three orthogonal mid-slices, and an ``index.html`` contact sheet.

Each picture shows the axial, coronal and sagittal mid-slices in the radiological
display convention, whatever the volume's storage order: the volume is first
permuted/flipped to its closest LPS axes (no interpolation), then

* axial: patient right on the picture's left, anterior at the top;
* coronal: patient right on the left, superior at the top;
* sagittal: anterior on the left, superior at the top;

and every edge is labelled with its anatomical direction, so a flipped or
swapped volume is visible at a glance. Pixels keep their physical aspect ratio.
Intensities: CT (``modality`` CT or ``units`` HU) in a soft-tissue window (level 40,
width 400 HU); anything else between its 1st and 99th percentiles. Label maps are
drawn in colour; when an image and a label map of the same grid are both in the
run (LUNA16's ``subset0/X`` and ``seg-lungs-LUNA16/X``, Sliver07's ``liver-orig001``
and ``liver-seg001``, the Decathlon's ``imagesTr/X`` and ``labelsTr/X``), the index
shows the labels over the image.
"""

from __future__ import annotations

import html
import json
import os
import re
from collections import defaultdict
from typing import Iterable

import numpy as np

#: Longest side of one panel, in pixels.
PANEL_SIZE = 192
SOFT_TISSUE = (40.0, 400.0)
#: Name tokens that mark an image or a label map; dropped when pairing the two.
PAIR_TOKENS = {"seg", "segmentation", "mask", "masks", "label", "labels", "gt", "orig", "image", "images", "img",
               "ct", "vol", "volume", "lungs", "luna16"}
_PALETTE = np.array([[0, 0, 0], [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48],
                     [145, 30, 180], [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 212]], dtype=np.uint8)
_SUFFIXES = (".nii.gz", ".nii", ".npz")
_VIEWS = (("axial", "R", "L", "A", "P"), ("coronal", "R", "L", "S", "I"), ("sagittal", "A", "P", "S", "I"))


def _strip_suffix(path: str) -> str:
    for suffix in _SUFFIXES:
        if path.lower().endswith(suffix):
            return path[: -len(suffix)]
    return os.path.splitext(path)[0]


def display_panels(volume) -> tuple[list[np.ndarray], list[tuple[float, float]]]:
    """The three mid-slices in display order (rows top->bottom, columns left->right) and their pixel sizes.

    Returns ``([axial, coronal, sagittal], [(row_mm, col_mm), ...])``.
    """
    from nibabel.orientations import apply_orientation, axcodes2ornt, io_orientation, ornt_transform

    array = np.asarray(volume.array)
    if array.ndim == 4:
        array = array[..., 0]
    if array.ndim == 2:
        array = array[:, :, None]
    # nibabel's orientation tools work in RAS; asking for "LPS" gives axes pointing to L, P, S
    current = io_orientation(volume.affine_ras)
    transform = ornt_transform(current, axcodes2ornt("LPS"))
    lps = apply_orientation(array, transform)
    spacing = np.empty(3)
    for axis, (target, _) in enumerate(transform):
        spacing[int(target)] = volume.spacing[axis]
    x, y, z = (n // 2 for n in lps.shape)
    axial = lps[:, :, z].T  # rows: A->P, columns: R->L
    coronal = lps[:, y, :].T[::-1]  # rows: S->I, columns: R->L
    sagittal = lps[x, :, :].T[::-1]  # rows: S->I, columns: A->P
    sizes = [(spacing[1], spacing[0]), (spacing[2], spacing[0]), (spacing[2], spacing[1])]
    return [axial, coronal, sagittal], sizes


def intensity_range(volume) -> tuple[float, float]:
    """The display window: soft tissue for CT, else the 1st-99th percentiles (of a sample)."""
    meta = volume.meta
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


def _label_rgb(panel: np.ndarray) -> np.ndarray:
    values = np.asarray(panel).astype(np.int64)
    colours = _PALETTE[1:][(values - 1) % (len(_PALETTE) - 1)]
    colours[values == 0] = 0
    return colours


def _compose(panels_rgb: list[np.ndarray], sizes, title: str):
    """The three panels side by side at physical aspect, edges labelled, title on top."""
    from PIL import Image, ImageDraw

    pictures = []
    for rgb, (row_mm, col_mm) in zip(panels_rgb, sizes):
        height_mm, width_mm = rgb.shape[0] * row_mm, rgb.shape[1] * col_mm
        scale = PANEL_SIZE / max(height_mm, width_mm)
        size = (max(1, round(width_mm * scale)), max(1, round(height_mm * scale)))
        pictures.append(Image.fromarray(rgb, "RGB").resize(size, Image.NEAREST))
    margin, top = 14, 18
    width = sum(p.width for p in pictures) + margin * (2 * len(pictures))
    height = max(p.height for p in pictures) + 2 * margin + top
    sheet = Image.new("RGB", (width, height), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    draw.text((4, 2), title[:120], fill=(230, 230, 230))
    x = margin
    for picture, (view, left, right, up, down) in zip(pictures, _VIEWS):
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


def write_unit_preview(volume, output_like: str) -> str:
    """Write ``<output stem>.png`` (and hidden display slices for overlays) for one volume; returns the PNG path.

    ``output_like`` is the output's path inside the preview folder (its suffix is replaced).
    """
    stem = _strip_suffix(output_like)
    os.makedirs(os.path.dirname(stem) or ".", exist_ok=True)
    panels, sizes = display_panels(volume)
    if volume.kind == "label":
        rgb = [_label_rgb(panel) for panel in panels]
        stored = [panel.astype(np.int32) for panel in panels]
    else:
        window = intensity_range(volume)
        stored = [_to_grey(panel, window) for panel in panels]
        rgb = [np.repeat(grey[..., None], 3, axis=2) for grey in stored]
    title = f"{os.path.basename(stem)}  {'x'.join(map(str, volume.shape))}  {volume.axis_codes}  {volume.kind}"
    png = stem + ".png"
    _compose(rgb, sizes, title).save(png, optimize=True)
    info = {"shape": list(volume.spatial_shape), "affine": np.round(volume.affine_ras, 3).tolist(),
            "kind": volume.kind, "axes": volume.axis_codes, "spacing": [round(s, 4) for s in volume.spacing],
            "sizes": [list(map(float, s)) for s in sizes], "title": title}
    np.savez_compressed(slices_path(stem), axial=stored[0], coronal=stored[1], sagittal=stored[2],
                        info=np.asarray(json.dumps(info)))
    return png


def slices_path(stem: str) -> str:
    """Where the display slices of a preview are kept for overlays: a hidden file, so no reader discovers it."""
    folder, name = os.path.split(stem)
    return os.path.join(folder, f".{name}.slices.npz")


def pair_key(relative_stem: str) -> str:
    """The name an image and its label map share once tokens such as ``seg``/``orig``/``mask`` are dropped."""
    name = relative_stem.rsplit("/", 1)[-1].lower()
    tokens = [t for t in re.findall(r"[a-z]+|\d+", name) if t not in PAIR_TOKENS]
    return "-".join(tokens)


def _load_slices(path: str):
    with np.load(path) as data:
        return [data["axial"], data["coronal"], data["sagittal"]], json.loads(str(data["info"]))


def find_pairs(preview_dir: str, stems: Iterable[str]) -> dict[str, str]:
    """``{image stem: label stem}`` for image/label previews that share a pair key and a grid."""
    by_key: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    infos = {}
    for stem in stems:
        path = slices_path(os.path.join(preview_dir, *stem.split("/")))
        if not os.path.isfile(path):
            continue
        _, info = _load_slices(path)
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


def write_overlay(preview_dir: str, image_stem: str, label_stem: str) -> str:
    """``<image stem>.overlay.png``: the label map in colour over the image (40% opacity)."""
    def base(stem):
        return os.path.join(preview_dir, *stem.split("/"))

    grey, info = _load_slices(slices_path(base(image_stem)))
    labels, _ = _load_slices(slices_path(base(label_stem)))
    panels = []
    for image, label in zip(grey, labels):
        rgb = np.repeat(image[..., None], 3, axis=2).astype(np.float64)
        colour = _label_rgb(label).astype(np.float64)
        mask = (label != 0)[..., None]
        panels.append(np.where(mask, 0.6 * rgb + 0.4 * colour, rgb).astype(np.uint8))
    path = base(image_stem) + ".overlay.png"
    _compose(panels, info["sizes"], info["title"] + f"  + {label_stem.rsplit('/', 1)[-1]}").save(path, optimize=True)
    return path


def write_index(preview_dir: str, relatives: Iterable[str]) -> str:
    """Write overlays for image/label pairs and ``index.html``, a contact sheet of every preview of the run."""
    stems = [_strip_suffix(relative) for relative in relatives]
    present = [stem for stem in stems if os.path.isfile(os.path.join(preview_dir, *stem.split("/")) + ".png")]
    pairs = find_pairs(preview_dir, present)
    for image, label in pairs.items():
        write_overlay(preview_dir, image, label)
    figures = []
    for stem in present:
        picture = stem + (".overlay.png" if stem in pairs else ".png")
        caption = html.escape(stem) + (f" <small>+ {html.escape(pairs[stem])}</small>" if stem in pairs else "")
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
