"""The exception hierarchy of medconv.

Every error medconv raises on purpose derives from :class:`MedconvError`. Each one
names the file it is about (``path``) and says what the user can do (``hint``), so
that the CLI can print it as one line and a batch can record it in the manifest.
Anything else escaping a unit of work is a bug in medconv and is reported as an
internal error.
"""

from __future__ import annotations

import os


class MedconvError(Exception):
    """Base of every error medconv raises on purpose.

    Parameters
    ----------
    message:
        What went wrong, in one sentence.
    path:
        The file or folder the error is about, if any.
    hint:
        What the user can do about it, if anything.
    """

    #: Short machine-readable name used in manifests (``reason`` column).
    code = "error"

    def __init__(self, message: str, path: str | os.PathLike | None = None, hint: str | None = None):
        self.message = message
        self.path = os.fspath(path) if path is not None else None
        self.hint = hint
        super().__init__(self.one_line())

    def one_line(self) -> str:
        """The error as one line: ``path: message (hint)``."""
        text = f"{self.path}: {self.message}" if self.path else self.message
        if self.hint:
            text = f"{text} ({self.hint})"
        return " ".join(text.split())  # one line, whatever a third-party message held

    def __reduce__(self):  # keep path and hint across process boundaries
        return (_rebuild, (type(self), self.message, self.path, self.hint))


def _rebuild(cls, message, path, hint):
    return cls(message, path=path, hint=hint)


class UsageError(MedconvError):
    """The command or API was called with options that do not fit together."""

    code = "usage"


class NothingFoundError(MedconvError):
    """A dataset folder holds nothing that any reader can convert."""

    code = "nothing-found"


class UnreadableFileError(MedconvError):
    """A file exists but cannot be parsed or decoded (truncated, corrupt, wrong size)."""

    code = "unreadable"


class UnsupportedFormatError(MedconvError):
    """No reader or writer accepts this file, or the format variant is not supported."""

    code = "unsupported"


class AmbiguousFormatError(UnsupportedFormatError):
    """More than one reader claims a file and nothing decides between them."""

    code = "ambiguous-format"


class MissingDependencyError(MedconvError):
    """A reader or writer needs an optional package that is not installed."""

    code = "missing-dependency"


class InvalidVolumeError(MedconvError, ValueError):
    """A Volume cannot be built from these values (bad spacing, direction, shape)."""

    code = "invalid-volume"


class GeometryError(MedconvError):
    """The geometry of a series is inconsistent and cannot be written honestly.

    Raised for gantry tilt, uneven spacing, duplicate positions or mixed orientations
    when the chosen policy is to refuse rather than resample.
    """

    code = "geometry"


class NotAVolumeError(MedconvError):
    """The unit is not an image volume (RTSTRUCT, SR, localizer, secondary capture...).

    Batches record such units as *excluded*, not failed.
    """

    code = "not-a-volume"


class NotApplicableError(MedconvError):
    """A requested step does not apply to this volume (e.g. a Hounsfield window on an MR image)."""

    code = "not-applicable"


class HeaderError(MedconvError):
    """A header attribute that a requested value needs is missing, implausible or contradicts another.

    Raised, for example, when PET SUV is asked for and PatientWeight or
    RadionuclideTotalDose is absent: the message names the DICOM attribute (keyword
    and tag), so the user knows what to fix. Never answered with a guessed value.
    """

    code = "header"


class OutputExistsError(MedconvError):
    """The output file exists and overwriting was not asked for."""

    code = "output-exists"


class OutputCollisionError(MedconvError):
    """Two units of one plan would write the same output path."""

    code = "output-collision"


class AnnotationReferenceError(MedconvError):
    """An annotation object (RTSTRUCT, SEG, LIDC XML) cannot be tied to exactly one image unit.

    Its referenced series is absent, or several candidate series fit: the annotation
    fails on its own and is never drawn on another image.
    """

    code = "annotation-reference"


class InvalidAnnotationError(MedconvError):
    """An annotation object holds values that cannot be drawn honestly (NaN or absurd coordinates, bad frames)."""

    code = "invalid-annotation"


class NotMyFormat(Exception):
    """Raised by a reader to say "this file is not for me" during dispatch.

    Not a user-facing error: the registry catches it and tries the next reader.
    """


class LabelValuesError(MedconvError):
    """A label map holds values that cannot be labels here (not integers, or outside the dataset's label table)."""

    code = "label-values"
