"""``medconv dcm2png SRC DST``: DICOM radiographs -> 8-bit PNG after the file's VOI (the common case of 2D datasets)."""

from __future__ import annotations

from dataclasses import replace

from .batch_options import batch_options
from .datasets import folder_argument, run_dataset, source_argument
from .image2d_options import image2d_output, radiograph_input
from .input_options import dicom_input
from .options import Example, ParsedOptions, command
from .output_options import output_group

#: Outputs keep the file's path under SRC (``stage_2_train_images/<patientId>.png``), so that box tables match.
DCM2PNG_TEMPLATE = "{file}"

DCM2PNG_EXAMPLES = (
    Example("RSNA Pneumonia: 512 px PNGs and the boxes moved with them (DST/boxes.csv)",
            "medconv dcm2png ./stage_2_train_images ./png --size 512 --boxes stage_2_train_labels.csv"),
    Example("lossless 16-bit PNGs of the modality values instead of the VOI",
            "medconv dcm2png ./dicom ./png16 --voi modality --png-depth 16"),
    Example("your own window, or the second of the file's windows",
            "medconv dcm2png ./dicom ./png --voi 2048,4096 && medconv dcm2png ./dicom ./png2 --voi window "
            "--voi-index 2"),
    Example("stretch to 256 x 256 on 2 cores", "medconv dcm2png ./dicom ./small --size 256x256 --keep-aspect no -j 2"),
)


@command(examples=DCM2PNG_EXAMPLES, short_help="DICOM radiographs under SRC -> 8-bit PNG after their VOI, boxes too.")
@source_argument
@folder_argument
@radiograph_input("file")
@dicom_input
@image2d_output
@output_group("png")
@batch_options
def dcm2png(src: str, dst: str, options: ParsedOptions) -> int:
    """Convert every DICOM radiograph (CR, DX, MG, IO, XA, digitised film) under SRC into a PNG in DST.

    Values go through the standard's pipeline (Modality LUT, the file's VOI LUT or
    window, MONOCHROME1 inverted once) into 8 bits; outputs keep each file's path
    under SRC (DST/<path>.png) with a JSON sidecar (VOI, spacing and its tag,
    resize frame). --boxes writes DST/boxes.csv in the outputs' frames. A 3D series
    under SRC fails (a PNG holds one image: convert it with tcia2nii). A rerun resumes.
    """
    if options.dataset.template is None:
        options = replace(options, dataset=replace(options.dataset, template=DCM2PNG_TEMPLATE))
    return run_dataset(src, dst, options, ("dicom",))
