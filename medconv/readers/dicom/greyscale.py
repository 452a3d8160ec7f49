"""The DICOM greyscale pipeline of projection radiographs (PS3.4 N.2), as pure functions.

Stored values become displayable values in the standard's order, and only in it
(inverting before the VOI is the classic double-inversion bug):

1. **Modality LUT** (PS3.3 C.11.1): the Modality LUT Sequence when present,
   else RescaleSlope / RescaleIntercept (default 1 and 0). Gives modality values
   (HU, optical density, or the detector's own scale).
2. **VOI** (C.11.2): a VOI LUT Sequence item, or a window (WindowCenter /
   WindowWidth) with VOILUTFunction ``LINEAR`` (default), ``LINEAR_EXACT`` or
   ``SIGMOID``; one of several windows or LUTs is chosen by index
   (:class:`VoiChoice`). With neither in the file, the image's own min..max.
3. **Presentation** (C.11.6): ``MONOCHROME1`` (low values bright) and
   Presentation LUT Shape ``INVERSE`` invert the VOI output **once**, over the
   output range (``y -> y_min + y_max - y``), so that higher values are brighter;
   both together are one inversion (PS3.3 pairs INVERSE with MONOCHROME1), never two.

:func:`display_image` runs the three steps into 8 or 16 bits; it is one lookup
table over the stored range (BitsStored <= 16), so a 2048 x 2048 radiograph costs
one indexing pass. :func:`presentation_values` is the lossless path (no VOI):
modality values with MONOCHROME1 inverted **by bit depth**, ``2^BitsStored - 1 - x``
for unsigned data without rescale (the whole stored range, never the data's maximum).

pydicom 3 (``pydicom.pixels``) and this module
-----------------------------------------------
The tests check every step against pydicom: :func:`modality_values` equals
``apply_modality_lut``, :func:`voi_values` with pydicom's output range equals
``apply_voi_lut``. This module does not call them because

* ``apply_presentation_lut`` ignores MONOCHROME1 and inverts INVERSE by the
  data's maximum (``arr.max() - arr``), not by the output range;
* ``apply_voi`` (VOI LUT) indexes with an array of the LUT's *entry* type, so an
  8-bit LUT with more than 256 entries (12-bit input, 8-bit output: common) wraps
  its indices modulo 256; and it fails (``struct.error``) on 8-bit LUT Data sent
  as OW, whose entries are packed two per word;
* ``apply_windowing`` always maps onto the stored range in modality units; here
  the output range is the caller's (0..255 for an 8-bit PNG), which is the same
  line scaled (the test shows it);
* pydicom works per pixel in float64; a lookup table is several times faster.

Pixel spacing (:func:`detector_spacing`): PixelSpacing (calibrated at the
patient) when positive; else ImagerPixelSpacing (at the detector) divided by
EstimatedRadiographicMagnificationFactor when that is present, else as it is
(objects appear magnified by the source distances); else
NominalScannedPixelSpacing (digitised film); else 1 mm. Which one was used is
recorded (:class:`SpacingSource`); a zero or negative value is ignored with a
warning naming the tag.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from medconv.errors import HeaderError, UnsupportedFormatError
from medconv.pixels import apply_rescale, smallest_integer_dtype

__all__ = ["VoiFunction", "VoiKind", "LookupTable", "Window", "GreyscaleHeader", "VoiChoice", "AppliedVoi",
           "DisplayImage", "SpacingSource", "DetectorSpacing", "greyscale_header", "modality_values",
           "modality_range", "voi_values", "presentation_values", "display_image", "display_lut",
           "detector_spacing"]


class VoiFunction(str, enum.Enum):
    """VOILUTFunction (0028,1056)."""

    LINEAR = "LINEAR"
    LINEAR_EXACT = "LINEAR_EXACT"
    SIGMOID = "SIGMOID"


@dataclass(frozen=True)
class LookupTable:
    """A Modality or VOI LUT (PS3.3 C.11.1.1): ``data[v - first_mapped]``, clamped to the first and last entry.

    Attributes
    ----------
    first_mapped:
        The input value mapped to the first entry (LUTDescriptor's 2nd value).
    bits:
        Bits per entry (LUTDescriptor's 3rd value); the output range is ``0 .. 2^bits - 1``.
    data:
        The entries (int64, read-only).
    explanation:
        LUTExplanation, for the sidecar.
    """

    first_mapped: int
    bits: int
    data: np.ndarray = field(repr=False)
    explanation: str = ""

    def __post_init__(self):
        data = np.asarray(self.data, dtype=np.int64)
        data.setflags(write=False)
        object.__setattr__(self, "data", data)

    @property
    def output_range(self) -> tuple[int, int]:
        return 0, 2**self.bits - 1

    def __call__(self, values: np.ndarray) -> np.ndarray:
        index = np.clip(np.asarray(values, dtype=np.float64) - self.first_mapped, 0, len(self.data) - 1)
        return self.data[index.astype(np.intp)]


@dataclass(frozen=True)
class Window:
    """A VOI window in modality units: WindowCenter, WindowWidth, VOILUTFunction."""

    center: float
    width: float
    function: VoiFunction = VoiFunction.LINEAR
    explanation: str = ""


class Presentation(str, enum.Enum):
    """Whether the VOI output is shown as it is or inverted (MONOCHROME1 / INVERSE)."""

    IDENTITY = "IDENTITY"
    INVERSE = "INVERSE"


@dataclass(frozen=True)
class GreyscaleHeader:
    """The header facts the pipeline needs, read once from a dataset (:func:`greyscale_header`)."""

    photometric: str
    bits_stored: int
    signed: bool
    slope: float = 1.0
    intercept: float = 0.0
    modality_lut: Optional[LookupTable] = None
    windows: tuple[Window, ...] = ()
    voi_luts: tuple[LookupTable, ...] = ()
    presentation_lut_shape: Optional[str] = None
    path: Optional[str] = None

    @property
    def stored_range(self) -> tuple[int, int]:
        """The values BitsStored can hold (PixelRepresentation decides the sign)."""
        if self.signed:
            return -(2 ** (self.bits_stored - 1)), 2 ** (self.bits_stored - 1) - 1
        return 0, 2**self.bits_stored - 1

    @property
    def presentation(self) -> Presentation:
        """INVERSE for MONOCHROME1 or Presentation LUT Shape INVERSE (one inversion, never two)."""
        inverse = self.photometric == "MONOCHROME1" or self.presentation_lut_shape == "INVERSE"
        return Presentation.INVERSE if inverse else Presentation.IDENTITY

    @property
    def warnings(self) -> tuple[str, ...]:
        """What the header says that does not fit together."""
        if self.photometric == "MONOCHROME1" and self.presentation_lut_shape == "IDENTITY":
            return ("MONOCHROME1 with Presentation LUT Shape IDENTITY (PS3.3 pairs it with INVERSE): "
                    "inverted as MONOCHROME1 says",)
        return ()


def _values(value: Any) -> list[Any]:
    """A DICOM value of any multiplicity as a list (pydicom gives a scalar for VM 1, a MultiValue above)."""
    if value is None or value == "":
        return []
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        return [value]
    return list(value)


def _float_values(value: Any) -> list[float]:
    return [float(v) for v in _values(value)]


def _lut_from_item(item: Any, ds: Any, signed_input: bool, what: str, path: Optional[str]) -> LookupTable:
    """A :class:`LookupTable` from a Modality or VOI LUT Sequence item (LUTDescriptor + LUTData)."""
    descriptor = item.get("LUTDescriptor")
    element = item["LUTData"] if "LUTData" in item else None
    if descriptor is None or element is None or element.value is None:
        raise HeaderError(f"{what} has no LUTDescriptor (0028,3002) or LUTData (0028,3006)", path)
    entries, first, bits = (int(v) for v in descriptor)
    entries = entries or 2**16
    if signed_input and first >= 2**15:  # US/SS ambiguity: the first mapped value is signed for signed input
        first -= 2**16
    value = element.value
    if isinstance(value, (bytes, bytearray)):  # OW: 16-bit words; 8-bit entries are packed two per word
        syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        big_endian = syntax == "1.2.840.10008.1.2.2"  # Explicit VR Big Endian
        words = np.frombuffer(value, dtype=">u2" if big_endian else "<u2")
        data = words.astype(np.int64)
        if bits <= 8 and len(words) * 2 >= entries > len(words):
            data = np.frombuffer(words.astype("<u2").tobytes(), dtype=np.uint8).astype(np.int64)
    else:
        data = np.asarray(list(value) if not np.isscalar(value) else [value], dtype=np.int64)
    if len(data) < entries:
        raise HeaderError(f"{what} LUTData holds {len(data)} entries, LUTDescriptor says {entries}", path)
    explanation = str(item.get("LUTExplanation", "") or "")
    return LookupTable(first_mapped=first, bits=bits, data=data[:entries], explanation=explanation)


def greyscale_header(ds: Any, path: Optional[str] = None) -> GreyscaleHeader:
    """The pipeline's facts from a pydicom Dataset (header only is enough).

    Raises
    ------
    UnsupportedFormatError
        The image is not greyscale (RGB, palette ...): it has no greyscale pipeline.
    HeaderError
        A LUT sequence is malformed, or BitsStored is missing.
    """
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2") or "MONOCHROME2").strip().upper()
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise UnsupportedFormatError(f"{photometric} is not a greyscale image", path,
                                     "only MONOCHROME1/2 images have a greyscale display pipeline")
    bits_stored = ds.get("BitsStored") or ds.get("BitsAllocated")
    if not bits_stored:
        raise HeaderError("BitsStored (0028,0101) is missing", path)
    signed = int(ds.get("PixelRepresentation", 0) or 0) == 1
    modality_lut = None
    if ds.get("ModalityLUTSequence"):
        modality_lut = _lut_from_item(ds.ModalityLUTSequence[0], ds, signed, "Modality LUT Sequence", path)
    slope = float(ds.get("RescaleSlope", 1.0) or 1.0) if modality_lut is None else 1.0
    intercept = float(ds.get("RescaleIntercept", 0.0) or 0.0) if modality_lut is None else 0.0
    voi_luts = tuple(_lut_from_item(item, ds, signed and modality_lut is None, f"VOI LUT Sequence item {n + 1}", path)
                     for n, item in enumerate(ds.get("VOILUTSequence") or ()))
    centers = _float_values(ds.get("WindowCenter"))
    widths = _float_values(ds.get("WindowWidth"))
    explanations = [str(text) for text in _values(ds.get("WindowCenterWidthExplanation"))]
    function_text = str(ds.get("VOILUTFunction", "LINEAR") or "LINEAR").strip().upper()
    try:
        function = VoiFunction(function_text)
    except ValueError:
        raise HeaderError(f"VOILUTFunction (0028,1056) {function_text!r} is not LINEAR, LINEAR_EXACT or SIGMOID",
                          path) from None
    windows = tuple(Window(c, w, function, explanations[n] if n < len(explanations) else "")
                    for n, (c, w) in enumerate(zip(centers, widths)))
    shape = ds.get("PresentationLUTShape")
    return GreyscaleHeader(photometric=photometric, bits_stored=int(bits_stored), signed=signed, slope=slope,
                           intercept=intercept, modality_lut=modality_lut, windows=windows, voi_luts=voi_luts,
                           presentation_lut_shape=str(shape).strip().upper() if shape else None, path=path)


# -- step 1: modality -----------------------------------------------------------------------

def modality_values(stored: np.ndarray, header: GreyscaleHeader) -> np.ndarray:
    """Step 1: the Modality LUT or the rescale (exact: integers stay integers, :func:`medconv.pixels.apply_rescale`)."""
    if header.modality_lut is not None:
        return header.modality_lut(stored)
    if header.slope == 1 and header.intercept == 0:
        return stored
    return apply_rescale(np.asarray(stored), header.slope, header.intercept)


def modality_float64(stored: np.ndarray, header: GreyscaleHeader) -> np.ndarray:
    """Step 1 in float64, as the VOI formulas take it (no float32 rounding before the window)."""
    if header.modality_lut is not None:
        return header.modality_lut(stored).astype(np.float64)
    return np.asarray(stored, dtype=np.float64) * header.slope + header.intercept


def modality_range(header: GreyscaleHeader) -> tuple[float, float]:
    """The range of modality values the stored range maps onto."""
    low, high = header.stored_range
    if header.modality_lut is not None:
        values = header.modality_lut(np.arange(low, high + 1))
        return float(values.min()), float(values.max())
    ends = (low * header.slope + header.intercept, high * header.slope + header.intercept)
    return min(ends), max(ends)


# -- step 2: VOI ------------------------------------------------------------------------------

class VoiKind(str, enum.Enum):
    """Which VOI to apply."""

    FILE = "file"          # the file's VOI LUT (preferred) or window, at ``index``; min-max when it has none
    FILE_WINDOW = "file-window"  # the file's window at ``index`` (ignoring a VOI LUT)
    FILE_LUT = "file-lut"  # the file's VOI LUT at ``index``
    WINDOW = "window"      # the caller's window
    MIN_MAX = "min-max"    # the image's own modality-value range
    NONE = "none"          # identity: the whole modality range onto the output range


@dataclass(frozen=True)
class VoiChoice:
    """The VOI to apply: the file's (default), a given window, the image's min..max, or none."""

    kind: VoiKind = VoiKind.FILE
    index: int = 0
    window: Optional[Window] = None

    def __post_init__(self):
        object.__setattr__(self, "kind", VoiKind(self.kind))
        if (self.kind is VoiKind.WINDOW) != (self.window is not None):
            raise ValueError("VoiChoice: a window is given exactly when kind is WINDOW")


@dataclass(frozen=True)
class AppliedVoi:
    """What VOI was applied, for the sidecar: its kind, the window or LUT, and why."""

    kind: VoiKind
    window: Optional[Window] = None
    lut: Optional[LookupTable] = None
    note: str = ""

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind.value}
        if self.window is not None:
            out.update(center=self.window.center, width=self.window.width, function=self.window.function.value)
            if self.window.explanation:
                out["explanation"] = self.window.explanation
        if self.lut is not None:
            out.update(lut_entries=len(self.lut.data), lut_first_mapped=self.lut.first_mapped, lut_bits=self.lut.bits)
            if self.lut.explanation:
                out["explanation"] = self.lut.explanation
        if self.note:
            out["note"] = self.note
        return out


def resolve_voi(header: GreyscaleHeader, choice: VoiChoice, data_range: Optional[tuple[float, float]] = None
                ) -> AppliedVoi:
    """The VOI ``choice`` means for this header (``data_range``: the image's modality min..max, for MIN_MAX)."""
    kind = choice.kind
    if kind is VoiKind.WINDOW:
        return AppliedVoi(kind, window=choice.window)
    if kind in (VoiKind.FILE, VoiKind.FILE_LUT) and header.voi_luts:
        if choice.index >= len(header.voi_luts):
            raise HeaderError(f"VOI LUT {choice.index + 1} asked for; VOILUTSequence (0028,3010) has "
                              f"{len(header.voi_luts)}", header.path)
        return AppliedVoi(VoiKind.FILE_LUT, lut=header.voi_luts[choice.index])
    if kind in (VoiKind.FILE, VoiKind.FILE_WINDOW) and header.windows:
        if choice.index >= len(header.windows):
            raise HeaderError(f"window {choice.index + 1} asked for; WindowCenter (0028,1050) has "
                              f"{len(header.windows)}", header.path)
        return AppliedVoi(VoiKind.FILE_WINDOW, window=header.windows[choice.index])
    if kind in (VoiKind.FILE_LUT, VoiKind.FILE_WINDOW):
        what = "VOILUTSequence (0028,3010)" if kind is VoiKind.FILE_LUT else "WindowCenter/WindowWidth (0028,1050)"
        raise HeaderError(f"the file has no {what}", header.path, "use the file's VOI, a window, or min-max")
    if kind is VoiKind.NONE:
        low, high = modality_range(header)
        return AppliedVoi(kind, window=_range_window(low, high), note="no VOI: the modality range")
    if data_range is None:
        raise ValueError("MIN_MAX needs the image's data range")
    note = "the image's min..max" + (" (the file has no VOI LUT or window)" if kind is VoiKind.FILE else "")
    return AppliedVoi(VoiKind.MIN_MAX, window=_range_window(*data_range), note=note)


def _range_window(low: float, high: float) -> Window:
    """The LINEAR_EXACT window that maps ``[low, high]`` onto the whole output range."""
    return Window(center=(low + high) / 2.0, width=max(high - low, 1e-12), function=VoiFunction.LINEAR_EXACT)


def window_values(values: np.ndarray, window: Window, output_range: tuple[float, float]) -> np.ndarray:
    """A window (PS3.3 C.11.2.1.2 LINEAR, C.11.2.1.3.2 LINEAR_EXACT, C.11.2.1.3.1 SIGMOID) onto ``output_range``, float64."""
    y_min, y_max = (float(v) for v in output_range)
    x = np.asarray(values, dtype=np.float64)
    c, w = window.center, window.width
    if window.function is VoiFunction.SIGMOID:
        if w <= 0:
            raise HeaderError(f"a SIGMOID window needs WindowWidth > 0, got {w:g}")
        return (y_max - y_min) / (1.0 + np.exp(-4.0 * (x - c) / w)) + y_min
    if window.function is VoiFunction.LINEAR:
        if w < 1:
            raise HeaderError(f"a LINEAR window needs WindowWidth >= 1, got {w:g}")
        c, w = c - 0.5, w - 1.0
    elif w <= 0:
        raise HeaderError(f"a LINEAR_EXACT window needs WindowWidth > 0, got {w:g}")
    out = np.empty_like(x)
    below, above = x <= c - w / 2.0, x > c + w / 2.0
    between = ~(below | above)
    out[below], out[above] = y_min, y_max
    out[between] = ((x[between] - c) / w + 0.5) * (y_max - y_min) + y_min if w > 0 else y_max
    return out


def voi_values(values: np.ndarray, applied: AppliedVoi, output_range: tuple[float, float]) -> np.ndarray:
    """Step 2: modality ``values`` through the VOI onto ``output_range`` (float64)."""
    if applied.lut is not None:
        low, high = applied.lut.output_range
        y_min, y_max = output_range
        entries = applied.lut(values).astype(np.float64)
        if (low, high) == (y_min, y_max):
            return entries
        return (entries - low) / (high - low) * (y_max - y_min) + y_min
    assert applied.window is not None
    return window_values(values, applied.window, output_range)


# -- step 3: presentation -----------------------------------------------------------------

def invert(values: np.ndarray, output_range: tuple[float, float]) -> np.ndarray:
    """``y_min + y_max - y``: the MONOCHROME1 / INVERSE step over the output range."""
    return (output_range[0] + output_range[1]) - values


def presentation_values(stored: np.ndarray, header: GreyscaleHeader) -> np.ndarray:
    """The lossless path: modality values, inverted over the modality range when MONOCHROME1 / INVERSE.

    For unsigned data without rescale that is ``2^BitsStored - 1 - x``; the dtype is
    the modality values' (integer data stays integer).
    """
    values = modality_values(stored, header)
    if header.presentation is Presentation.IDENTITY:
        return values
    low, high = modality_range(header)
    if values.dtype.kind in "iu" and float(low).is_integer() and float(high).is_integer():
        dtype = smallest_integer_dtype(low, high, prefer_signed=low < 0, min_itemsize=values.dtype.itemsize)
        if dtype is not None:
            return (int(low + high) - values.astype(np.int64)).astype(dtype)
    return (low + high) - values.astype(np.float64)


# -- all three ----------------------------------------------------------------------------

@dataclass(frozen=True)
class DisplayImage:
    """The result of :func:`display_image`: the pixels and what was applied to them."""

    array: np.ndarray
    voi: AppliedVoi
    presentation: Presentation
    bits: int
    warnings: tuple[str, ...] = ()

    def describe(self) -> dict[str, Any]:
        """For the sidecar: the VOI, the presentation and the output depth."""
        return {"voi": self.voi.describe(), "presentation": self.presentation.value, "bits": self.bits}


def _quantised(values: np.ndarray, bits: int) -> np.ndarray:
    top = 2**bits - 1
    return np.clip(np.floor(values + 0.5), 0, top).astype(np.uint8 if bits <= 8 else np.uint16)


def display_lut(header: GreyscaleHeader, applied: AppliedVoi, bits: int = 8) -> np.ndarray:
    """The whole pipeline as one table over the stored range: entry ``v - stored_low`` is stored value ``v``'s output."""
    low, high = header.stored_range
    stored = np.arange(low, high + 1, dtype=np.int64)
    output_range = (0.0, float(2**bits - 1))
    values = voi_values(modality_float64(stored, header), applied, output_range)
    if header.presentation is Presentation.INVERSE:
        values = invert(values, output_range)
    return _quantised(values, bits)


#: Above this many stored values a lookup table is not worth building (BitsStored > 16).
MAX_LUT_BITS = 16


def display_image(stored: np.ndarray, header: GreyscaleHeader, choice: VoiChoice = VoiChoice(),
                  bits: int = 8) -> DisplayImage:
    """Stored values through Modality LUT -> VOI -> Presentation into ``bits`` (8 or 16) per pixel.

    Output values are ``floor(y + 0.5)`` of the standard's formulas over ``0 .. 2^bits - 1``.
    """
    if bits not in (8, 16):
        raise ValueError(f"bits must be 8 or 16, got {bits}")
    stored = np.asarray(stored)
    warnings = list(header.warnings)
    data_range = None
    needs_range = choice.kind is VoiKind.MIN_MAX or (choice.kind is VoiKind.FILE and not header.voi_luts
                                                     and not header.windows)
    if needs_range:
        modality = modality_float64(np.array([stored.min(), stored.max()]), header) \
            if header.modality_lut is None else modality_float64(stored, header)
        data_range = (float(modality.min()), float(modality.max()))
        if choice.kind is VoiKind.FILE:
            warnings.append("the file has no VOI LUT or window: mapped the image's own min..max")
    applied = resolve_voi(header, choice, data_range)
    if stored.dtype.kind in "iu" and header.bits_stored <= MAX_LUT_BITS:
        low, high = header.stored_range
        table = display_lut(header, applied, bits)
        if stored.dtype.kind == "u" and stored.dtype.itemsize <= 2 and low == 0:
            # a table over the whole dtype, values above the stored range on the last entry (as clipping gives):
            # plain indexing, a third faster than np.take(mode="clip") on a 2048 x 2048 radiograph
            whole = np.empty(np.iinfo(stored.dtype).max + 1, dtype=table.dtype)
            whole[: len(table)], whole[len(table):] = table, table[-1]
            array = whole[stored]
        else:
            index = stored.astype(np.int32, copy=False) - low if low else stored
            array = np.take(table, index, mode="clip")
    else:
        output_range = (0.0, float(2**bits - 1))
        values = voi_values(modality_float64(stored, header), applied, output_range)
        if header.presentation is Presentation.INVERSE:
            values = invert(values, output_range)
        array = _quantised(values, bits)
    return DisplayImage(array, applied, header.presentation, bits, tuple(warnings))


# -- spacing ------------------------------------------------------------------------------

class SpacingSource(str, enum.Enum):
    """Which attribute gave a projection image's pixel spacing."""

    PIXEL_SPACING = "PixelSpacing"
    IMAGER_CORRECTED = "ImagerPixelSpacing / EstimatedRadiographicMagnificationFactor"
    IMAGER = "ImagerPixelSpacing (at the detector)"
    NOMINAL_SCANNED = "NominalScannedPixelSpacing"
    NONE = "none (1 mm)"


@dataclass(frozen=True)
class DetectorSpacing:
    """Pixel spacing of a projection image: ``row`` (between rows) and ``column`` (between columns) in mm."""

    row: float
    column: float
    source: SpacingSource
    magnification: Optional[float] = None
    warnings: tuple[str, ...] = ()

    @property
    def ij(self) -> tuple[float, float]:
        """Spacing along ``i`` (columns) and ``j`` (rows), the Volume's order."""
        return self.column, self.row


def _pair(ds: Any, keyword: str, tag: str, warnings: list[str]) -> Optional[tuple[float, float]]:
    values = _float_values(ds.get(keyword))
    if not values:
        return None
    if len(values) == 1:
        values = values * 2
    if len(values) != 2 or not all(np.isfinite(v) and v > 0 for v in values):
        warnings.append(f"{keyword} {tag} is {values}: not a positive spacing, ignored")
        return None
    return values[0], values[1]


def detector_spacing(ds: Any) -> DetectorSpacing:
    """The pixel spacing of a projection radiograph and which attribute it came from (module notes)."""
    warnings: list[str] = []
    pixel = _pair(ds, "PixelSpacing", "(0028,0030)", warnings)
    if pixel:
        return DetectorSpacing(pixel[0], pixel[1], SpacingSource.PIXEL_SPACING, warnings=tuple(warnings))
    imager = _pair(ds, "ImagerPixelSpacing", "(0018,1164)", warnings)
    if imager:
        factors = _float_values(ds.get("EstimatedRadiographicMagnificationFactor"))
        if factors and np.isfinite(factors[0]) and factors[0] >= 1:
            factor = factors[0]
            return DetectorSpacing(imager[0] / factor, imager[1] / factor, SpacingSource.IMAGER_CORRECTED, factor,
                                   tuple(warnings))
        if factors:
            warnings.append(f"EstimatedRadiographicMagnificationFactor (0018,1114) is {factors[0]:g}: a "
                            "magnification is at least 1, ignored")
        warnings.append("spacing is ImagerPixelSpacing, at the detector: anatomy is magnified by the beam geometry")
        return DetectorSpacing(imager[0], imager[1], SpacingSource.IMAGER, warnings=tuple(warnings))
    scanned = _pair(ds, "NominalScannedPixelSpacing", "(0018,2010)", warnings)
    if scanned:
        return DetectorSpacing(scanned[0], scanned[1], SpacingSource.NOMINAL_SCANNED, warnings=tuple(warnings))
    warnings.append("no PixelSpacing, ImagerPixelSpacing or NominalScannedPixelSpacing: used 1 mm")
    return DetectorSpacing(1.0, 1.0, SpacingSource.NONE, warnings=tuple(warnings))

