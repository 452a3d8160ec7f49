"""dicom2nifti as a second independent reference for plain DICOM series (it shares no code with medconv).

dicom2nifti (test extra only: nothing in medconv imports it) converts with its
own reader: pydicom, its own slice sorting and affine. medconv's output must hold
the same Hounsfield units at the same RAS positions, compared in world space
(both reoriented to the closest RAS axes by nibabel, no interpolation), on a real
GE lung CT of the LIDC corpus and on synthetic oblique and reversed-order series.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

import medconv
from dicom_synth import oriented, write_series
from references import assert_same_in_world

dicom2nifti = pytest.importorskip("dicom2nifti", reason="dicom2nifti is in the test extra")


def _dicom2nifti(folder, out) -> nib.Nifti1Image:
    import dicom2nifti.settings as settings

    settings.disable_validate_slice_increment()  # the LIDC excerpts keep a few slices: gaps are expected there
    try:
        result = dicom2nifti.dicom_series_to_nifti(str(folder), str(out), reorient_nifti=False)
    finally:
        settings.enable_validate_slice_increment()
    return nib.load(result["NII_FILE"])


def _ours(folder, out) -> nib.Nifti1Image:
    medconv.write(medconv.read(folder), out)
    return nib.load(out)


@pytest.mark.corpus
@pytest.mark.slow
def test_lidc_ct_series_agrees_with_dicom2nifti(tmp_path):
    from conftest import corpus_path

    folders = sorted({p.parent for p in corpus_path("lidc").rglob("*.dcm")})
    # the first series medconv reads without a repair (dicom2nifti would keep a gap or uneven stack as it is)
    folder = next(f for f in folders if not medconv.read(f).meta.get("warnings"))
    assert_same_in_world(_ours(folder, tmp_path / "ours.nii"), _dicom2nifti(folder, tmp_path / "d2n.nii.gz"),
                         atol_mm=1e-3)


@pytest.mark.parametrize("instance_numbers", ["spatial", "reversed"])
def test_oblique_series_agrees_with_dicom2nifti(tmp_path, instance_numbers):
    iop = (0.9659258, 0.2588190, 0.0, 0.0, 0.0, -1.0)  # a coronal-ish plane rotated 15 degrees
    positions = oriented(iop, np.arange(8) * 1.5)
    write_series(tmp_path / "series", positions, iop, rows=14, columns=11, pixel_spacing=(0.9, 0.7),
                 instance_numbers=instance_numbers, names="shuffled")
    ours = _ours(tmp_path / "series", tmp_path / "ours.nii")
    reference = _dicom2nifti(tmp_path / "series", tmp_path / "d2n.nii.gz")
    assert_same_in_world(ours, reference, atol_mm=1e-3)
    assert np.asanyarray(ours.dataobj).dtype == np.int16  # HU as int16 (dicom2nifti writes floats or int16 + scl)
