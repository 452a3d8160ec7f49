"""FSL ``.bval`` / ``.bvec`` files beside a diffusion-weighted NIfTI output.

A diffusion Volume carries ``meta["diffusion"]`` (see :data:`medconv.volume.META_KEYS`):
one b-value and one gradient direction per volume, the directions in the
patient LPS frame. FSL wants them in files of their own, named like the image
(``x.nii.gz`` -> ``x.bval``, ``x.bvec``), in the convention FSL and dcm2niix
document:

* ``.bval``: one line, the b-values (s/mm²) in volume order;
* ``.bvec``: three lines (x, y, z), one column per volume, each direction a unit
  vector **in the image's voxel frame**: its components along the output's
  ``i``, ``j``, ``k`` axes (``direction.T @ g``), with the ``i`` component negated
  when the NIfTI affine has a positive determinant (FSL reads such images with
  ``i`` flipped, the "radiological" voxel order). b = 0 and isotropic volumes
  have ``0 0 0``.

The directions are turned into the voxel frame of the Volume being written, so a
reorientation or resampling before writing is followed. Gradients that are not in
the patient frame (GE's, kept as stored, ``meta["diffusion"]["frame"]`` not
``"LPS"``) get a ``.bval`` but no ``.bvec``.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import numpy as np

from ..atomic import atomic_output
from ..volume import Volume

#: ``meta["diffusion"]["frame"]`` of directions in the DICOM patient frame.
PATIENT_FRAME = "LPS"


def voxel_frame_bvecs(volume: Volume, gradients_lps) -> np.ndarray:
    """``(3, volumes)``: the FSL ``.bvec`` columns of these LPS gradient directions for ``volume``'s axes."""
    gradients = np.asarray(gradients_lps, dtype=np.float64).reshape(-1, 3)
    vectors = gradients @ np.asarray(volume.direction, dtype=np.float64)  # row t: direction.T @ g_t
    lengths = np.linalg.norm(vectors, axis=1)
    nonzero = lengths > 1e-6
    vectors[nonzero] /= lengths[nonzero, None]
    vectors[~nonzero] = 0.0
    if np.linalg.det(volume.affine_ras[:3, :3]) > 0:
        vectors[:, 0] = -vectors[:, 0]
    return vectors.T + 0.0  # (+ 0.0: no negative zero in the file)


def _number(value: float) -> str:
    return f"{value:.6g}"


def gradient_tables(volume: Volume) -> list[tuple[str, list[str]]]:
    """``[(".bval", lines), (".bvec", lines)]`` for a diffusion-weighted ``volume`` (none otherwise).

    Raises
    ------
    ValueError
        ``meta["diffusion"]`` does not hold one b-value per volume (a bug upstream).
    """
    diffusion = volume.meta.get("diffusion")
    if not diffusion or not diffusion.get("b_values"):
        return []
    b_values = [float(b) for b in diffusion["b_values"]]
    volumes = volume.shape[3] if len(volume.shape) == 4 else 1
    if len(b_values) != volumes:
        raise ValueError(f"meta['diffusion'] holds {len(b_values)} b-values for {volumes} volumes")
    tables = [(".bval", [" ".join(_number(b) for b in b_values)])]
    gradients = diffusion.get("gradients")
    if gradients is not None and diffusion.get("frame", PATIENT_FRAME) == PATIENT_FRAME:
        tables.append((".bvec", [" ".join(_number(v) for v in row) for row in voxel_frame_bvecs(volume, gradients)]))
    return tables


@contextlib.contextmanager
def gradient_files(volume: Volume, stem: str, overwrite: bool = False) -> Iterator[list[str]]:
    """Write ``stem.bval`` (and ``stem.bvec``) of a diffusion-weighted ``volume`` for the image written in the block.

    The tables are written to temporaries (:func:`medconv.atomic.atomic_output`) on
    entry and renamed to their final names when the block ends without an error, so
    the writer renames its image after them: a kill while the image is written leaves
    only temporaries (which the batch runner removes), an error leaves nothing, and an
    image under its final name always has its tables. Yields the final paths (none for
    a volume without ``meta["diffusion"]``).

    Raises
    ------
    ValueError
        As :func:`gradient_tables`.
    OutputExistsError
        A table exists and ``overwrite`` is false (before anything is written).
    """
    tables = gradient_tables(volume)
    with contextlib.ExitStack() as stack:
        written = []
        for suffix, lines in tables:
            temp = stack.enter_context(atomic_output(stem + suffix, overwrite=overwrite))
            with open(temp, "w", encoding="ascii") as handle:
                handle.write("".join(line + "\n" for line in lines))
            written.append(stem + suffix)
        yield written
