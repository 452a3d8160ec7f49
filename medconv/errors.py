"""The exception hierarchy of medconv.

Every error medconv raises on purpose derives from :class:`MedconvError`. Each one
names the file it is about (``path``) and says what the user can do (``hint``), so
that the CLI can print it as one line and a batch can record it in the manifest.
Anything else escaping a unit of work is a bug in medconv and is reported as an
internal error.
"""

from __future__ import annotations

import errno
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

    def __reduce__(self):  # keep path, hint and any extra fields across process boundaries
        return (_rebuild, (type(self), self.message, self.path, self.hint), dict(self.__dict__))


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


class OutsideDatasetError(MedconvError):
    """A file a unit needs resolves outside the dataset folder (SRC): an absolute or ``../`` data-file
    name, or a symbolic link pointing elsewhere. Refused unless ``ReadOptions.follow_outside`` is set."""

    code = "outside-dataset"


class SpecialFileError(UnreadableFileError):
    """A path a unit needs is a device, FIFO or socket, not a regular file (``/dev/zero``); always refused,
    since reading one can block forever or never end."""

    code = "special-file"


class VolumeTooLargeError(MedconvError):
    """A header declares more voxels than ``ReadOptions.max_voxels`` allows (default: what the memory
    available now can hold), checked before anything is allocated."""

    code = "too-large"


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


class MemoryLimitError(MedconvError, MemoryError):
    """A unit (or a guarded call) needed more memory than it may use.

    Raised instead of a bare ``MemoryError`` so that the batch records it as the
    unit's failure with a reason, never as a bug in medconv.
    """

    code = "memory"


class DecoderCrashedError(UnreadableFileError):
    """Native decoding code died (a signal, a panic, an abort) or overran its limits.

    Raised by :func:`medconv.guard.guarded` in the caller's process, which lives on.
    The file is probably corrupt (or the decoder has a bug); either way only this
    unit fails. ``reason`` is how the guarded process ended (``signal 6 (SIGABRT)``,
    ``no answer within 60 s`` ...).
    """

    code = "decoder-crashed"

    def __init__(self, message: str, path: str | os.PathLike | None = None, hint: str | None = None,
                 reason: str = ""):
        self.reason = reason
        super().__init__(message, path=path, hint=hint)


class DecoderTimeoutError(DecoderCrashedError):
    """A guarded call gave no answer within its time limit; its process was killed."""

    code = "decoder-timeout"


class UnitCrashedError(MedconvError):
    """The process converting a unit died (a signal or a native abort outside any guarded call).

    The batch records the unit as failed with this reason and carries on with a
    new worker process.
    """

    code = "crashed"


class EnvironmentFaultError(MedconvError):
    """The machine refused something medconv needed: permission, disk space, a writable folder.

    A user's problem to fix (the hint says how), never a bug in medconv. Built
    from an :class:`OSError` by :func:`environment_fault`.
    """

    code = "environment"
    #: The ``errno`` of the OSError it was made from, if any.
    errno: int | None = None


class PermissionDeniedError(EnvironmentFaultError):
    """No permission to read an input or to write into the destination."""

    code = "permission"


class DiskFullError(EnvironmentFaultError):
    """The destination's file system is full (or over quota)."""

    code = "disk-full"


class ReadOnlyDestinationError(EnvironmentFaultError):
    """The destination is on a read-only file system."""

    code = "read-only"


class NotAFolderError(EnvironmentFaultError):
    """A path that has to be a folder is a file (or the other way round)."""

    code = "not-a-folder"


class DestinationLockedError(MedconvError):
    """Another medconv run is writing into the same destination folder."""

    code = "locked"


class ManifestWriteError(EnvironmentFaultError):
    """The manifest itself cannot be written: the run cannot record what it does."""

    code = "manifest"


_ERRNO_FAULTS = {
    errno.EACCES: (PermissionDeniedError, "permission denied",
                   "check the permissions, or choose a destination folder you can write to"),
    errno.EPERM: (PermissionDeniedError, "operation not permitted",
                  "check the permissions, or choose a destination folder you can write to"),
    errno.ENOSPC: (DiskFullError, "no space left on the device", "free some space, then rerun the same command "
                                                                 "(finished units are kept)"),
    errno.EDQUOT: (DiskFullError, "disk quota exceeded", "free some space or raise the quota, then rerun the same "
                                                         "command (finished units are kept)"),
    errno.EROFS: (ReadOnlyDestinationError, "the file system is read-only",
                  "choose a destination folder on a writable disk"),
    errno.ENOTDIR: (NotAFolderError, "a part of this path is a file, not a folder",
                    "rename or remove that file, or choose another destination"),
    errno.EEXIST: (NotAFolderError, "a file is in the way where a folder is needed",
                   "rename or remove that file, or choose another destination"),
    errno.EISDIR: (NotAFolderError, "this is a folder where a file is needed",
                   "rename or remove that folder, or choose another name"),
    errno.EFBIG: (DiskFullError, "the file is too large for the file system or the file size limit",
                  "write to another file system, or raise the limit ('ulimit -f')"),
    errno.ENAMETOOLONG: (EnvironmentFaultError, "the path is too long for the file system",
                         "choose a shorter destination path or a shorter --name template"),
    errno.EMFILE: (EnvironmentFaultError, "too many open files", "raise the limit ('ulimit -n') or lower --jobs"),
    errno.ENFILE: (EnvironmentFaultError, "too many open files in the system", "lower --jobs"),
    errno.EIO: (EnvironmentFaultError, "input/output error (a failing disk or network file system)",
                "check the disk or the mount, then rerun"),
    errno.ENOENT: (EnvironmentFaultError, "the file or folder disappeared while medconv was using it",
                   "do not move or delete files during a run; rerun the same command"),
}


#: errno values only a write can raise: such an error without a file name is about the output being written.
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG})


def environment_fault(exc: BaseException, path: str | os.PathLike | None = None) -> EnvironmentFaultError | None:
    """The typed user error for an :class:`OSError` the machine raised, or ``None`` if it is not one.

    ``path`` names the file when the error does not (``exc.filename`` wins).
    Errors outside the known environment faults (permission, space, read-only,
    file-in-the-way, vanished files ...) return ``None``: they stay internal errors.
    """
    if not isinstance(exc, OSError) or exc.errno not in _ERRNO_FAULTS:
        return None
    cls, message, hint = _ERRNO_FAULTS[exc.errno]
    where = exc.filename if exc.filename is not None else path
    if isinstance(where, bytes):
        where = os.fsdecode(where)
    fault = cls(message, where, hint)
    fault.errno = exc.errno
    return fault
