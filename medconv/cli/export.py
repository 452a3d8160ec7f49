"""``medconv export nnunet|msd|monai SRC DST``: training-ready datasets; ``medconv export check FOLDER``.

Each format command pairs SRC's images with their label maps (a rule per known
layout, or ``--pairs``), exports the cases through the batch runner (parallel,
resumable, a manifest row per case), writes the index file, checks the result
with nnU-Net's integrity rules and prints the dataset summary. The export option
groups below (Dataset, Pairing, Labels) fill :class:`medconv.export.ExportOptions`;
:class:`ExportCommand` hands their values to the command as ``export_values``.
"""

from __future__ import annotations

from typing import Any, Mapping

import click

from .annotation_options import annotation_options
from .batch_options import batch_options
from .input_options import dicom_input, tiff_input
from .options import Example, MedconvCommand, OptionGroup, ParsedOptions, Target, group_of, write_examples
from .transform_options import transform_options

#: The export option groups: their values become ExportOptions fields, not ReadOptions/RunOptions.
_EXPORT_GROUPS: list[OptionGroup] = []


def _no_target(values: Mapping[str, Any]):
    return {}


def _export_group(title: str, *options) -> OptionGroup:
    group = OptionGroup(title, *options, fields=_no_target)
    _EXPORT_GROUPS.append(group)
    return group


def _label_spec(ctx, param, values):
    from ..errors import UsageError
    from ..export.labelmap import LabelSpec

    try:
        return tuple(LabelSpec.parse(value) for value in values)
    except UsageError as exc:
        raise click.BadParameter(exc.one_line(), ctx=ctx, param=param) from None


def _label_ref(ctx, param, value):
    if value is None:
        return None
    value = value.strip()
    return int(value) if value.lstrip("-").isdigit() else value


def _names(ctx, param, value):
    if value is None:
        return ()
    names = tuple(part.strip() for part in value.split(","))
    if not all(names):
        raise click.BadParameter(f"{value!r}: give the channel names in order, separated by commas, e.g. CT or T1,T2")
    return names


pairing_options = _export_group(
    "Pairing",
    click.option("--rule", type=click.Choice(("msd", "luna16", "sliver07", "lits", "annotations", "case-folders")),
                 default=None, help="The layout of SRC [default: the first rule that recognises it]."),
    click.option("--pairs", type=click.Path(exists=True, dir_okay=False), default=None, metavar="CSV",
                 help="Pair by an explicit table: columns case,channel,path (channel 'label' for the mask; paths "
                      "relative to SRC)."),
    click.option("--channel-names", callback=_names, default=None, metavar="NAME[,NAME...]",
                 help="Rename the channels in order, e.g. CT (nnU-Net uses its CT normalisation only for 'CT')."),
    click.option("--unlabeled", type=click.Choice(("test", "skip")), default="test", show_default=True,
                 help="Images without a label map: export to imagesTs/, or leave them out (listed)."),
    click.option("--on-grid-mismatch", type=click.Choice(("error", "resample")), default="error", show_default=True,
                 help="A label map (or channel) not on its image's grid: fail that case, or resample it onto the "
                      "image grid (nearest neighbour for labels) with a warning."),
)

label_options = _export_group(
    "Labels",
    click.option("--label", "labels", multiple=True, callback=_label_spec, metavar="NAME=VALUES",
                 help="A label of the dataset and the source values (or label names) it takes, e.g. liver=1 or "
                      "lung=3,4; repeatable, in order (values 1, 2, ...). Default: declared or found values."),
    click.option("--ignore-label", callback=_label_ref, default=None, metavar="VALUE",
                 help="A source value (or name) meaning 'not annotated': exported as nnU-Net's 'ignore' label, "
                      "the highest value."),
)


def _dataset_group(*, id_required: bool, monai: bool = False) -> OptionGroup:
    options = [
        click.option("--id", "dataset_id", type=click.IntRange(1, 999), required=id_required, default=None,
                     metavar="N", help="The dataset number: Dataset501_Name (nnU-Net: 500-999 for your own)."
                     if id_required else "A dataset number: TaskNN_Name [default: none]."),
        click.option("--name", "dataset_name", default=None, metavar="NAME",
                     help="The dataset name [default: SRC's folder name without TaskNN_]."),
        click.option("--overwrite", is_flag=True, help="Redo cases already exported (default: a rerun resumes)."),
        click.option("--check", "check_only", is_flag=True,
                     help="Only check the dataset already at DST (every voxel read) and stop."),
    ]
    if monai:
        options += [
            click.option("--validation", "validation_fraction", type=click.FloatRange(0, 1, max_open=True),
                         default=0.2, show_default=True, help="Share of the labelled cases listed for validation."),
            click.option("--folds", type=click.IntRange(0), default=0, show_default=True,
                         help="Give the training cases a 'fold' number 0..N-1 for cross-validation (0: none)."),
            click.option("--seed", type=int, default=0, show_default=True,
                         help="Seed of the shuffle choosing validation cases and folds."),
        ]
    return _export_group("Dataset", *options)


class ExportCommand(MedconvCommand):
    """A format command: its export groups' values reach the function as ``export_values``."""

    def invoke(self, ctx: click.Context) -> Any:
        params = {param.name: param for param in self.params}
        ctx.params["export_values"] = {name: value for name, value in ctx.params.items()
                                       if name in params and group_of(params[name]) in _EXPORT_GROUPS}
        return super().invoke(ctx)


def _format_command(name: str, examples, short_help: str, dataset_group: OptionGroup):
    def decorate(function):
        function = batch_options(function)
        function = transform_options(function)
        function = label_options(function)
        function = pairing_options(function)
        function = tiff_input(function)
        function = annotation_options(function)
        function = dicom_input(function)
        function = dataset_group(function)
        function = click.argument("dst", type=click.Path(file_okay=False), metavar="DST")(function)
        function = click.argument("src", type=click.Path(exists=True, file_okay=False), metavar="SRC")(function)
        return click.command(name, cls=ExportCommand, examples=examples, short_help=short_help)(function)

    return decorate


def run_export(fmt: str, src: str, dst: str, options: ParsedOptions, values: Mapping[str, Any]) -> int:
    """Build the option objects, run the export (or only its check), print, return the exit code."""
    import dataclasses
    import os

    from ..batch.progress import batch_console
    from ..export import ExportOptions, check_dataset, export_dataset

    export = ExportOptions(
        format=fmt, dataset_id=values.get("dataset_id"), name=values.get("dataset_name"), rule=values.get("rule"),
        pairs=values.get("pairs"), labels=values.get("labels") or (), ignore_label=values.get("ignore_label"),
        channel_names=values.get("channel_names") or (), on_grid_mismatch=values.get("on_grid_mismatch") or "error",
        unlabeled=values.get("unlabeled") or "test", validation_fraction=values.get("validation_fraction", 0.2),
        folds=values.get("folds") or 0, seed=values.get("seed") or 0)
    if values.get("check_only"):
        folder = os.path.join(dst, export.layout(src).folder_name())
        return print_check(check_dataset(folder, deep=True, jobs=options.run.jobs or 1), batch_console(stderr=False))
    console = batch_console()
    run = dataclasses.replace(options.run, overwrite=bool(values.get("overwrite")))
    write = dataclasses.replace(options.write, overwrite=bool(values.get("overwrite")))
    result = export_dataset(src, dst, export, read_options=options.read, write_options=write,
                            preprocessing=options.dataset.preprocessing, run_options=run,
                            dry_run=options.dataset.dry_run, console=console)
    if not options.dataset.dry_run and options.run.summary:
        next_step = {"nnunet": f"next: nnUNetv2_plan_and_preprocess -d {export.dataset_id} --verify_dataset_integrity "
                               f"(with nnUNet_raw={os.path.abspath(dst)})",
                     "msd": "next: monai.data.load_decathlon_datalist(dataset.json, data_list_key='training')",
                     "monai": "next: monai.data.load_decathlon_datalist(datalist.json, data_list_key='training')"}[fmt]
        status = "checked: no problem" if result.check and result.check.ok else \
            f"checked: {len(result.check.problems)} problem(s)" if result.check else ""
        console.print(f"dataset: {result.dataset_dir}  {status}", highlight=False, markup=False)
        console.print(next_step, highlight=False, markup=False)
    return result.exit_code


def print_check(report, console) -> int:
    """One line per problem, a last line with the count; exit code 1 when there is any."""
    for problem in report.problems:
        console.print(f"check: {problem.one_line()}", highlight=False, markup=False)
    what = "voxels and headers" if report.deep else "headers"
    console.print(f"{report.folder}: {report.format} dataset, {report.cases} case(s), {what} checked: "
                  + ("no problem" if report.ok else f"{len(report.problems)} problem(s)"), highlight=False, markup=False)
    return 0 if report.ok else 1


NNUNET_EXAMPLES = (
    Example("a Decathlon task to nnU-Net v2 (4D images split into _0000.._0003)",
            "medconv export nnunet ./Task01_BrainTumour ./nnUNet_raw --id 501"),
    Example("LUNA16 (CT + lung masks), naming the mask values", "medconv export nnunet ./LUNA16 ./nnUNet_raw --id 516 "
            "--name Lungs --label lung=3,4 --label trachea=5"),
    Example("resampled to 1 mm on the way (labels follow, nearest neighbour)",
            "medconv export nnunet ./Task03_Liver ./nnUNet_raw --id 503 --orient RAS --spacing 1"),
    Example("LIDC-IDRI (CT + the readers' consensus nodule masks: labels background 0, nodule 1)",
            "medconv export nnunet ./LIDC-IDRI ./nnUNet_raw --id 504 --name LungNodules --consensus 0.5"),
    Example("NSCLC-Radiomics RTSTRUCT, one ROI by name (the others left out, named per case)",
            "medconv export nnunet ./NSCLC-Radiomics ./nnUNet_raw --id 506 --name LungTumour --label tumor=GTV-1"),
    Example("any dataset from a table of case,channel,path",
            "medconv export nnunet ./data ./nnUNet_raw --id 520 --name Mine --pairs pairs.csv"),
    Example("check an exported dataset again (every voxel)", "medconv export nnunet ./LUNA16 ./nnUNet_raw --id 516 "
            "--name Lungs --check"),
)


@_format_command("nnunet", NNUNET_EXAMPLES, "Cases of SRC -> nnU-Net v2 Dataset###_Name (imagesTr, labelsTr).",
                 _dataset_group(id_required=True))
def nnunet(src: str, dst: str, options: ParsedOptions, export_values: Mapping[str, Any]) -> int:
    """Export SRC's cases as nnU-Net v2's raw dataset DST/Dataset{ID}_{NAME}.

    imagesTr/{case}_{0000..}.nii.gz (one file per channel), labelsTr/{case}.nii.gz,
    imagesTs/ for images without a label map, dataset.json (channel_names, labels
    name -> consecutive value, numTraining, file_ending). Then nnU-Net's integrity
    rules are checked and the dataset summary is printed (dataset_summary.json).
    """
    return run_export("nnunet", src, dst, options, export_values)


MSD_EXAMPLES = (
    Example("LUNA16 as a Decathlon-style task", "medconv export msd ./LUNA16 ./msd --id 16 --name Lungs"),
    Example("Sliver07, resampled to 1 mm", "medconv export msd ./sliver07 ./msd --name Liver --spacing 1"),
)


@_format_command("msd", MSD_EXAMPLES, "Cases of SRC -> a Decathlon-style TaskNN_Name (4D multi-channel images).",
                 _dataset_group(id_required=False))
def msd(src: str, dst: str, options: ParsedOptions, export_values: Mapping[str, Any]) -> int:
    """Export SRC's cases in the Medical Segmentation Decathlon layout, DST/Task{ID}_{NAME}.

    One file per case (channels stacked along a 4th axis), labelsTr/, imagesTs/,
    and dataset.json with modality, labels and the training/test lists that
    MONAI's load_decathlon_datalist reads.
    """
    return run_export("msd", src, dst, options, export_values)


MONAI_EXAMPLES = (
    Example("a datalist with 20 % validation", "medconv export monai ./Task03_Liver ./monai --name Liver"),
    Example("5 cross-validation folds, no held-out validation",
            "medconv export monai ./LUNA16 ./monai --name Lungs --validation 0 --folds 5"),
)


@_format_command("monai", MONAI_EXAMPLES, "Cases of SRC -> files + a MONAI datalist.json (training/validation/test).",
                 _dataset_group(id_required=False, monai=True))
def monai(src: str, dst: str, options: ParsedOptions, export_values: Mapping[str, Any]) -> int:
    """Export SRC's cases as Decathlon-style files with a MONAI datalist, DST/{NAME}/datalist.json.

    training (with a 'fold' number when --folds is given), validation and test
    lists, read by monai.data.load_decathlon_datalist(path, data_list_key=...).
    """
    return run_export("monai", src, dst, options, export_values)


CHECK_EXAMPLES = (
    Example("nnU-Net's integrity rules on any nnU-Net, Decathlon or MONAI folder",
            "medconv export check ./nnUNet_raw/Dataset501_BrainTumour"),
)


@click.command("check", cls=MedconvCommand, examples=CHECK_EXAMPLES,
               short_help="nnU-Net's integrity rules on an exported dataset folder.")
@click.argument("folder", type=click.Path(exists=True, file_okay=False), metavar="FOLDER")
@click.option("--headers-only", is_flag=True, help="Read headers only (fast); default: every voxel too.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=1, show_default=True, metavar="N",
              help="Processes reading the cases.")
def check(folder: str, headers_only: bool, jobs: int) -> int:
    """Check an exported dataset FOLDER (nnU-Net, Decathlon or MONAI layout): every case has every channel
    and its label map, all on one grid, label values declared and consecutive, no NaN. One line per problem;
    exit code 1 when there is any."""
    from ..batch.progress import batch_console
    from ..export import check_dataset

    return print_check(check_dataset(folder, deep=not headers_only, jobs=jobs), batch_console(stderr=False))


class ExportGroup(click.Group):
    """``medconv export``: its help lists the formats with an example each."""

    @property
    def examples(self):
        """The first example of each subcommand (``medconv --help`` shows the first)."""
        return tuple(e for c in (nnunet, msd, monai, check) for e in c.examples[:1])

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_epilog(ctx, formatter)
        with formatter.section("Examples"):
            write_examples(formatter, self.examples)


@click.group("export", cls=ExportGroup, short_help="Image/label cases -> nnU-Net v2, Decathlon or MONAI layouts.")
def export():
    """Pair each image with its label map and export training-ready datasets.

    Pairing rules know the Decathlon (imagesTr/labelsTr), LUNA16, Sliver07, LiTS,
    KiTS/BraTS case folders and DICOM + annotation layouts; --pairs takes any
    dataset. Labels follow the images' preprocessing on exactly their grid.
    """


for _command in (nnunet, msd, monai, check):
    export.add_command(_command)
