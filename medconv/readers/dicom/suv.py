"""PET standardised uptake values (SUVbw, SUL) as pure functions of header facts.

``SUV = activity concentration (Bq/ml) x mass (g) / injected dose decayed to the reference time (Bq)``,
in g/ml. The decay follows DecayCorrection (0054,1102), which says what the image
values are already corrected to:

* ``START``: decay-corrected to the scan start. The dose is decayed from the
  injection to the scan start: ``D x 2^(-(t_start - t_inj) / T_half)``. The scan
  start is SeriesDate/SeriesTime, except where it cannot be: GE writes the true
  scan start in the private (0009,100D) of ``GEMS_PETD_01`` (used when
  present), and a series whose SeriesTime lies after its AcquisitionTime was
  re-created after the scan (post-processing, some Siemens and GE exports), so
  the acquisition time is used instead (noted).
* ``ADMIN``: decay-corrected to the injection: the dose is used as it is.
* ``NONE``: not decay-corrected: the dose is decayed to the image's
  AcquisitionDate/AcquisitionTime and averaged over ActualFrameDuration
  (``(1 - e^(-l d)) / (l d)``, the mean decay during the frame) when that is given.

The injection time is RadiopharmaceuticalStartDateTime (0018,1078), else
RadiopharmaceuticalStartTime (0018,1072) on the series date; a time of day later
than the scan is the day before (an injection across midnight, noted). With a
time of day only and a half-life over a day (Zr-89, I-124), the day cannot be
known and the SUV is refused.

**Inputs** (RadiopharmaceuticalInformationSequence (0054,0016) item 1):
RadionuclideTotalDose (0018,1074) in Bq, RadionuclideHalfLife (0018,1075) in s,
PatientWeight (0010,1030) in kg; for SUL also PatientSize (0010,1020) in m and
PatientSex (0010,0040) M or F. A missing value, or one outside the plausible
ranges below (a dose in MBq, a weight in grams, a height in cm), raises
:class:`~medconv.errors.HeaderError` naming the attribute: never a guessed SUV.

**Units** (0054,1001): ``BQML`` is the vendor-neutral case (Siemens, GE,
Philips, Canon, United Imaging). Philips ``CNTS`` images are converted with the
private Activity Concentration Scale Factor (7053,1009) (Bq/ml per count) and
then follow the same decay arithmetic; if only Philips' own SUV Scale Factor
(7053,1000) is present, that factor is the SUVbw per count (Philips did the
decay). ``GML`` images already hold SUVbw. Anything else is refused.

**SUL** is the SUV normalised to lean body mass, by the Janmahasatian formula
(Clin Pharmacokinet 2005): ``LBM = 9270 W / (6680 + 216 BMI)`` for men and
``9270 W / (8780 + 244 BMI)`` for women (W in kg, BMI in kg/m^2). PERCIST asks for
SUL; Janmahasatian is used rather than the James formula that many scanners
use, because James' LBM falls again at high BMI (above about 43 kg/m^2 for men,
37 for women) and gives absurd SULs in obese patients (Tahari et al., J Nucl
Med 2014), while Janmahasatian's grows monotonically with weight.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Optional, Sequence

import numpy as np

from medconv.errors import HeaderError, NotApplicableError

__all__ = ["DecayCorrection", "SuvKind", "PetDoseFacts", "SuvScale", "pet_dose_facts", "decayed_dose",
           "lean_body_mass_kg", "suv_scale", "apply_suv", "PLAUSIBLE_DOSE_BQ", "PLAUSIBLE_WEIGHT_KG",
           "PLAUSIBLE_HEIGHT_M"]

#: Injected doses outside this range (Bq) are not believed: below it the value is
#: probably in MBq, above it no PET injection comes near.
PLAUSIBLE_DOSE_BQ = (1.0e5, 2.0e10)
#: Patient weights outside this range (kg) are not believed (grams or pounds stored by mistake).
PLAUSIBLE_WEIGHT_KG = (0.5, 500.0)
#: Patient heights outside this range (m) are not believed (centimetres stored by mistake).
PLAUSIBLE_HEIGHT_M = (0.3, 2.6)
#: With only a time of day for the injection, half-lives above this (s) make the day unknowable.
MAX_HALF_LIFE_FOR_TIME_ONLY_S = 86400.0

PHILIPS_CREATOR = "Philips PET Private Group"
GE_CREATOR = "GEMS_PETD_01"


class DecayCorrection(str, enum.Enum):
    """DecayCorrection (0054,1102): the time the image values are decay-corrected to."""

    START = "START"
    ADMIN = "ADMIN"
    NONE = "NONE"


class SuvKind(str, enum.Enum):
    """Which SUV: body weight (``suv``) or lean body mass (``sul``)."""

    BODY_WEIGHT = "suv"
    LEAN_BODY_MASS = "sul"

    @property
    def units(self) -> str:
        return "SUVbw g/ml" if self is SuvKind.BODY_WEIGHT else "SUL g/ml (lean body mass, Janmahasatian)"


@dataclass(frozen=True)
class PetDoseFacts:
    """What the SUV needs from one PET image header (:func:`pet_dose_facts`).

    Times are naive datetimes in the scanner's local time. ``notes`` says what
    had to be decided (injection the day before, post-processed series time ...).
    """

    units: str
    decay_correction: DecayCorrection
    total_dose_bq: float
    half_life_s: float
    injection: datetime
    series: Optional[datetime]
    acquisition: Optional[datetime]
    weight_kg: float
    height_m: Optional[float] = None
    sex: Optional[str] = None
    frame_duration_s: Optional[float] = None
    ge_scan_start: Optional[datetime] = None
    philips_activity_factor: Optional[float] = None
    philips_suv_factor: Optional[float] = None
    injection_from: str = "RadiopharmaceuticalStartDateTime"
    notes: tuple[str, ...] = ()
    path: Optional[str] = None

    @property
    def decay_reference(self) -> tuple[datetime, str]:
        """The time the dose is decayed to, and why (module notes)."""
        if self.decay_correction is DecayCorrection.ADMIN:
            return self.injection, "ADMIN: the injection"
        if self.decay_correction is DecayCorrection.NONE:
            if self.acquisition is None:
                raise HeaderError("DecayCorrection NONE needs AcquisitionDate/AcquisitionTime (0008,0022/0032)",
                                  self.path)
            return self.acquisition, "NONE: the image's acquisition time"
        if self.ge_scan_start is not None:
            return self.ge_scan_start, "START: GE scan start (0009,100D)"
        if self.series is None:
            raise HeaderError("DecayCorrection START needs SeriesDate/SeriesTime (0008,0021/0031)", self.path)
        if self.acquisition is not None and self.series > self.acquisition:
            return self.acquisition, "START: AcquisitionTime (SeriesTime is later: a post-processed series)"
        return self.series, "START: SeriesDate/SeriesTime"


@dataclass(frozen=True)
class SuvScale:
    """``SUV = stored value (after rescale) x factor``, with how it was made."""

    factor: float
    kind: SuvKind
    decayed_dose_bq: Optional[float]
    mass_g: float
    reference: str
    input_units: str = "BQML"
    notes: tuple[str, ...] = ()

    @property
    def units(self) -> str:
        return self.kind.units

    def describe(self) -> dict[str, Any]:
        """For the sidecar."""
        return {"kind": self.kind.value, "units": self.units, "input_units": self.input_units, "factor": self.factor,
                "decayed_dose_bq": self.decayed_dose_bq, "mass_g": self.mass_g, "decay_reference": self.reference,
                "notes": list(self.notes)}


# -- reading the facts --------------------------------------------------------------------

def _text(value: Any) -> str:
    return str(value).strip() if value not in (None, "") else ""


def _number(ds: Any, keyword: str, tag: str, path: Optional[str], required: bool = True) -> Optional[float]:
    value = ds.get(keyword) if ds is not None else None
    if value in (None, ""):
        if required:
            raise HeaderError(f"{keyword} {tag} is missing", path, "the SUV cannot be computed without it")
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise HeaderError(f"{keyword} {tag} is {value!r}, not a number", path) from None
    if not math.isfinite(number):
        raise HeaderError(f"{keyword} {tag} is {value!r}", path)
    return number


def _datetime(value: str, what: str, path: Optional[str]) -> datetime:
    from pydicom.valuerep import DT

    try:
        parsed = DT(value.strip())
    except (ValueError, TypeError):
        raise HeaderError(f"{what} is {value!r}, not a DICOM date-time", path) from None
    return datetime(parsed.year, parsed.month, parsed.day, parsed.hour, parsed.minute, parsed.second,
                    parsed.microsecond, tzinfo=parsed.tzinfo)


def _date_time(date: Any, time: Any, what: str, path: Optional[str]) -> Optional[datetime]:
    """A DA + TM pair as a datetime; ``None`` when either is absent."""
    date, time = _text(date), _text(time).replace(":", "")
    if not date or not time:
        return None
    return _datetime(date.replace(".", "") + time, what, path)


def _local(moment: datetime, offset: Optional[str], notes: list[str]) -> datetime:
    """A possibly offset-aware time as naive local time (in the TimezoneOffsetFromUTC of the series when given)."""
    if moment.tzinfo is None:
        return moment
    if offset:
        sign = -1 if offset.startswith("-") else 1
        digits = offset.lstrip("+-")
        local_offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0)) * sign
        return moment.astimezone(timezone(local_offset)).replace(tzinfo=None)
    notes.append("RadiopharmaceuticalStartDateTime has a UTC offset and the series none: read as local time")
    return moment.replace(tzinfo=None)


def _private(ds: Any, group: int, creator: str, element: int) -> Optional[Any]:
    try:
        return ds.private_block(group, creator)[element].value
    except (KeyError, ValueError):
        return None


def pet_dose_facts(ds: Any, path: Optional[str] = None) -> PetDoseFacts:
    """The SUV facts of one PET image (a pydicom Dataset; the header is enough).

    Raises
    ------
    HeaderError
        A needed attribute is missing, implausible or contradicts another (the
        message names it); see the module notes for the rules.
    """
    notes: list[str] = []
    units = _text(ds.get("Units")).upper()
    if not units:
        raise HeaderError("Units (0054,1001) is missing", path, "PET values of unknown units have no SUV")
    decay_text = _text(ds.get("DecayCorrection")).upper()
    try:
        decay = DecayCorrection(decay_text)
    except ValueError:
        raise HeaderError(f"DecayCorrection (0054,1102) is {decay_text or 'missing'}; START, ADMIN or NONE is "
                          "needed", path) from None
    sequence = ds.get("RadiopharmaceuticalInformationSequence")
    if not sequence:
        raise HeaderError("RadiopharmaceuticalInformationSequence (0054,0016) is missing", path,
                          "it holds the injected dose and half-life the SUV needs")
    item = sequence[0]
    dose = _number(item, "RadionuclideTotalDose", "(0018,1074)", path)
    if not PLAUSIBLE_DOSE_BQ[0] <= dose <= PLAUSIBLE_DOSE_BQ[1]:
        raise HeaderError(f"RadionuclideTotalDose (0018,1074) is {dose:g} Bq, outside {PLAUSIBLE_DOSE_BQ[0]:g}.."
                          f"{PLAUSIBLE_DOSE_BQ[1]:g} Bq (stored in MBq?)", path, "correct the header; no SUV is guessed")
    half_life = _number(item, "RadionuclideHalfLife", "(0018,1075)", path)
    if half_life <= 0:
        raise HeaderError(f"RadionuclideHalfLife (0018,1075) is {half_life:g} s", path)
    weight = _number(ds, "PatientWeight", "(0010,1030)", path)
    if not PLAUSIBLE_WEIGHT_KG[0] <= weight <= PLAUSIBLE_WEIGHT_KG[1]:
        raise HeaderError(f"PatientWeight (0010,1030) is {weight:g} kg, outside {PLAUSIBLE_WEIGHT_KG[0]:g}.."
                          f"{PLAUSIBLE_WEIGHT_KG[1]:g} kg", path, "correct the header; no SUV is guessed")
    height = _number(ds, "PatientSize", "(0010,1020)", path, required=False) or None
    sex = _text(ds.get("PatientSex")).upper() or None
    series = _date_time(ds.get("SeriesDate"), ds.get("SeriesTime"), "SeriesDate/SeriesTime (0008,0021/0031)", path)
    acquisition = None
    if ds.get("AcquisitionDateTime"):
        acquisition = _datetime(_text(ds.get("AcquisitionDateTime")), "AcquisitionDateTime (0008,002A)", path)
        acquisition = acquisition.replace(tzinfo=None)
    else:
        acquisition = _date_time(ds.get("AcquisitionDate") or ds.get("SeriesDate"), ds.get("AcquisitionTime"),
                                 "AcquisitionDate/AcquisitionTime (0008,0022/0032)", path)
    offset = _text(ds.get("TimezoneOffsetFromUTC")) or None
    start_datetime = _text(item.get("RadiopharmaceuticalStartDateTime"))
    if start_datetime:
        injection = _local(_datetime(start_datetime, "RadiopharmaceuticalStartDateTime (0018,1078)", path), offset,
                           notes)
        injection_from = "RadiopharmaceuticalStartDateTime"
    else:
        start_time = _text(item.get("RadiopharmaceuticalStartTime"))
        if not start_time:
            raise HeaderError("RadiopharmaceuticalStartDateTime (0018,1078) and RadiopharmaceuticalStartTime "
                              "(0018,1072) are missing", path, "the injection time is needed to decay the dose")
        day = ds.get("SeriesDate") or ds.get("AcquisitionDate") or ds.get("StudyDate")
        if not day:
            raise HeaderError("RadiopharmaceuticalStartTime (0018,1072) has no date: SeriesDate (0008,0021) is "
                              "missing", path)
        if half_life > MAX_HALF_LIFE_FOR_TIME_ONLY_S:
            raise HeaderError(f"the injection has a time of day only (RadiopharmaceuticalStartTime (0018,1072)) and "
                              f"the half-life is {half_life / 86400:.1f} days: the injection day is unknown", path,
                              "RadiopharmaceuticalStartDateTime (0018,1078) is needed")
        injection = _date_time(day, start_time, "RadiopharmaceuticalStartTime (0018,1072)", path)
        injection_from = "RadiopharmaceuticalStartTime on the series date"
        scan = series or acquisition
        if scan is not None and injection > scan:
            injection -= timedelta(days=1)
            notes.append("RadiopharmaceuticalStartTime is later in the day than the scan: injected the day before "
                         "(across midnight)")
    duration = _number(ds, "ActualFrameDuration", "(0018,1242)", path, required=False)
    ge_start = _private(ds, 0x0009, GE_CREATOR, 0x0D)
    ge_scan_start = _datetime(_text(ge_start), "GE scan start (0009,100D)", path).replace(tzinfo=None) \
        if _text(ge_start) else None
    facts = PetDoseFacts(
        units=units, decay_correction=decay, total_dose_bq=dose, half_life_s=half_life, injection=injection,
        series=series, acquisition=acquisition, weight_kg=weight, height_m=height, sex=sex,
        frame_duration_s=duration / 1000.0 if duration else None, ge_scan_start=ge_scan_start,
        philips_activity_factor=_optional_float(_private(ds, 0x7053, PHILIPS_CREATOR, 0x09)),
        philips_suv_factor=_optional_float(_private(ds, 0x7053, PHILIPS_CREATOR, 0x00)),
        injection_from=injection_from, notes=tuple(notes), path=path)
    reference, _ = facts.decay_reference
    if reference < facts.injection:
        raise HeaderError(f"the injection ({facts.injection:%Y-%m-%d %H:%M:%S}, {injection_from}) is after the "
                          f"decay reference time ({reference:%Y-%m-%d %H:%M:%S})", path,
                          "the injection and series times contradict each other; correct the header")
    return facts


def _optional_float(value: Any) -> Optional[float]:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number > 0 else None


# -- the arithmetic -------------------------------------------------------------------------

def decayed_dose(facts: PetDoseFacts) -> tuple[float, str]:
    """The injected dose decayed to the time the image values refer to (Bq), and that time's description."""
    reference, why = facts.decay_reference
    elapsed = (reference - facts.injection).total_seconds()
    decay_constant = math.log(2.0) / facts.half_life_s
    dose = facts.total_dose_bq * math.exp(-decay_constant * elapsed)
    if facts.decay_correction is DecayCorrection.NONE and facts.frame_duration_s:
        during = decay_constant * facts.frame_duration_s
        dose *= -math.expm1(-during) / during  # the mean decay over the frame
        why += f", averaged over the {facts.frame_duration_s:g} s frame"
    return dose, why


def lean_body_mass_kg(weight_kg: float, height_m: Optional[float], sex: Optional[str],
                      path: Optional[str] = None) -> float:
    """Lean body mass by Janmahasatian et al. 2005 (module notes)."""
    if height_m is None:
        raise HeaderError("PatientSize (0010,1020) is missing", path, "SUL (lean body mass) needs the height")
    if not PLAUSIBLE_HEIGHT_M[0] <= height_m <= PLAUSIBLE_HEIGHT_M[1]:
        raise HeaderError(f"PatientSize (0010,1020) is {height_m:g} m, outside {PLAUSIBLE_HEIGHT_M[0]:g}.."
                          f"{PLAUSIBLE_HEIGHT_M[1]:g} m (stored in cm?)", path, "correct the header")
    if sex not in ("M", "F"):
        raise HeaderError(f"PatientSex (0010,0040) is {sex or 'missing'}; SUL's lean body mass needs M or F", path)
    bmi = weight_kg / height_m**2
    if sex == "M":
        return 9270.0 * weight_kg / (6680.0 + 216.0 * bmi)
    return 9270.0 * weight_kg / (8780.0 + 244.0 * bmi)


def suv_scale(facts: PetDoseFacts, kind: SuvKind = SuvKind.BODY_WEIGHT) -> SuvScale:
    """The factor that turns this image's values (after rescale) into SUVbw or SUL (module notes)."""
    kind = SuvKind(kind)
    mass_g = 1000.0 * (facts.weight_kg if kind is SuvKind.BODY_WEIGHT else
                       lean_body_mass_kg(facts.weight_kg, facts.height_m, facts.sex, facts.path))
    to_lean = mass_g / (1000.0 * facts.weight_kg)  # SUL / SUVbw
    notes = list(facts.notes)
    if facts.units == "GML":
        notes.append("Units GML: the values are SUVbw already")
        return SuvScale(to_lean, kind, None, mass_g, "as stored (GML)", facts.units, tuple(notes))
    if facts.units == "CNTS":
        if facts.philips_activity_factor is not None:
            per_count = facts.philips_activity_factor
            notes.append(f"Units CNTS: x {per_count:g} Bq/ml per count (Philips (7053,1009))")
        elif facts.philips_suv_factor is not None:
            notes.append(f"Units CNTS: Philips SUV Scale Factor (7053,1000) {facts.philips_suv_factor:g} per count")
            return SuvScale(facts.philips_suv_factor * to_lean, kind, None, mass_g, "Philips SUV Scale Factor",
                            facts.units, tuple(notes))
        else:
            raise HeaderError("Units (0054,1001) is CNTS and neither Philips Activity Concentration Scale Factor "
                              "(7053,1009) nor SUV Scale Factor (7053,1000) is present", facts.path,
                              "counts have no SUV without a calibration")
    elif facts.units == "BQML":
        per_count = 1.0
    else:
        raise HeaderError(f"Units (0054,1001) is {facts.units}; SUV needs BQML (or Philips CNTS, or GML)", facts.path)
    dose, why = decayed_dose(facts)
    return SuvScale(per_count * mass_g / dose, kind, dose, mass_g, why, facts.units, tuple(notes))


def apply_suv(volume: Any, scales: SuvScale | Sequence[SuvScale]) -> Any:
    """``volume`` (PET, in the units the scales were made for) as float32 SUV: one scale, or one per slice ``k``.

    The values are multiplied by the factor, ``meta["units"]`` becomes the SUV's
    units and the scale's description goes into ``meta["dicom"]["suv"]``.
    """
    single = isinstance(scales, SuvScale)
    per_slice = [scales] if single else list(scales)
    source = (volume.meta.get("source_files") or [None])[0]
    units = str(volume.meta.get("units") or "")
    if units.startswith(("SUV", "SUL")):
        raise NotApplicableError(f"the volume is already in {units}", source)
    if units and units != per_slice[0].input_units:
        raise NotApplicableError(f"the volume is in {units}, the SUV scale was made for {per_slice[0].input_units}",
                                 source)
    array = np.asarray(volume.array)
    if not single and (array.ndim < 3 or len(per_slice) != array.shape[2]):
        raise NotApplicableError(f"{len(per_slice)} SUV scales for a volume of shape {array.shape}", source,
                                 "give one scale, or one per slice")
    factors = np.array([scale.factor for scale in per_slice], dtype=np.float64)
    shape = (1, 1, len(factors)) + (1,) * (array.ndim - 3) if not single else ()
    result = (array.astype(np.float64) * (factors.reshape(shape) if not single else factors[0])).astype(np.float32)
    first = per_slice[0]
    meta = dict(volume.meta)
    meta["units"] = first.units
    dicom = dict(meta.get("dicom") or {})
    dicom["suv"] = first.describe() if single else {**first.describe(), "factor": factors.tolist()}
    meta["dicom"] = dicom
    step = f"{first.kind.value} x {first.factor:.6g} ({first.reference}) -> float32 {first.units}" if single else \
        f"{first.kind.value} per slice x {factors.min():.6g}..{factors.max():.6g} -> float32 {first.units}"
    return volume.with_step(step, array=result, meta=meta)


def with_frame_time(facts: PetDoseFacts, acquisition: datetime, duration_s: Optional[float] = None) -> PetDoseFacts:
    """The same facts for another frame of the series (NONE decay correction: one scale per frame)."""
    return replace(facts, acquisition=acquisition, frame_duration_s=duration_s or facts.frame_duration_s)


# -- a DICOM unit in the reader (ReadOptions.pet) ------------------------------------------

#: The facts every file of one PET unit must share for one SUV (attribute, its tag).
SHARED_FACTS = (("units", "Units (0054,1001)"), ("decay_correction", "DecayCorrection (0054,1102)"),
                ("total_dose_bq", "RadionuclideTotalDose (0018,1074)"),
                ("half_life_s", "RadionuclideHalfLife (0018,1075)"),
                ("injection", "the injection time (0018,1078 / 0018,1072)"),
                ("weight_kg", "PatientWeight (0010,1030)"), ("height_m", "PatientSize (0010,1020)"),
                ("sex", "PatientSex (0010,0040)"))


@dataclass(frozen=True)
class UnitSuv:
    """The SUV of one PET unit: a factor per frame (in the order given), the first frame's scale, the history step."""

    factors: np.ndarray
    scale: SuvScale
    step: str

    def describe(self) -> dict[str, Any]:
        """For ``meta["dicom"]["suv"]``: the scale, with every factor when they differ between frames."""
        described = self.scale.describe()
        if len(set(self.factors.ravel().tolist())) > 1:
            described["factor"] = self.factors.ravel().tolist()
        return described


def _parsed(path: str) -> Any:
    from .decode import read_datasets

    return read_datasets([path])[0]


def _check_shared(first: PetDoseFacts, other: PetDoseFacts, kind: SuvKind) -> None:
    """``other`` (another file of the unit) states the same dose, times and patient as ``first``, or HeaderError."""
    for attribute, tag in SHARED_FACTS:
        if attribute in ("height_m", "sex") and kind is not SuvKind.LEAN_BODY_MASS:
            continue
        mine, theirs = getattr(first, attribute), getattr(other, attribute)
        if mine != theirs:
            raise HeaderError(f"{tag} contradicts itself within the series: {mine} in {first.path}, {theirs} in "
                              f"{other.path}", first.path, "one SUV needs one dose, time and patient; no SUV is guessed")


def unit_suv(paths_by_frame: Sequence[str], kind: SuvKind | str, per_frame_times: bool = True) -> UnitSuv:
    """The SUV factors of a PET unit whose frames come from ``paths_by_frame`` (one path per frame, output order).

    The first and last files' facts must agree (dose, half-life, injection, decay
    correction, units, weight; height and sex for SUL), else :class:`HeaderError`
    naming the attribute. With DecayCorrection START or ADMIN one factor serves every
    frame; with NONE each file's own acquisition time gives its frame's factor
    (:func:`with_frame_time`), which needs one file per frame (``per_frame_times``).

    Raises
    ------
    HeaderError
        A missing, implausible or contradictory input, naming the tag (never a guessed SUV).
    """
    kind = SuvKind(kind)
    files = list(dict.fromkeys(paths_by_frame))
    first = pet_dose_facts(_parsed(files[0]), files[0])
    scale = suv_scale(first, kind)
    if len(files) > 1:
        _check_shared(first, pet_dose_facts(_parsed(files[-1]), files[-1]), kind)
    if first.decay_correction is DecayCorrection.NONE and first.units != "GML" and scale.decayed_dose_bq is not None:
        if not per_frame_times:
            raise HeaderError("DecayCorrection (0054,1102) is NONE: each frame needs its own acquisition time, and "
                              "the frames of this multi-frame object are not read one by one", files[0],
                              "convert without --pet and decay the frames yourself; no SUV is guessed")
        by_file = {files[0]: scale}
        for path in files[1:]:
            facts = pet_dose_facts(_parsed(path), path)
            _check_shared(first, facts, kind)
            by_file[path] = suv_scale(facts, kind)
        factors = np.array([by_file[path].factor for path in paths_by_frame], dtype=np.float64)
        step = (f"{kind.value} per frame x {factors.min():.6g}..{factors.max():.6g} (NONE: each frame's acquisition "
                f"time) -> float32 {scale.units}")
    else:
        factors = np.full(len(paths_by_frame), scale.factor, dtype=np.float64)
        step = f"{kind.value} x {scale.factor:.6g} ({scale.reference}) -> float32 {scale.units}"
    return UnitSuv(factors, scale, step)
