"""The command-line structure: grouped options, real examples, and options only where they apply."""

from __future__ import annotations

import json
import shlex

import click
import nibabel as nib
import numpy as np
import pytest
import tifffile
from click.testing import CliRunner

from medconv.cli.main import COMMANDS, cli, main
from medconv.cli.options import Example, OptionGroup, ParsedOptions, Target, command, group_of

DATASET_COMMANDS = ("tcia2nii", "mhd2nii", "convert")


def help_text(*args: str) -> str:
    result = CliRunner().invoke(cli, [*args, "--help"], terminal_width=80)
    assert result.exit_code == 0, result.output
    return result.output


def command_object(name: str) -> click.Command:
    return cli.get_command(click.Context(cli), name)


def section(text: str, heading: str) -> str:
    """The lines of one help section (from its heading to the next blank-line-separated heading)."""
    lines = text.splitlines()
    start = lines.index(heading + ":")
    body = []
    for line in lines[start + 1:]:
        if line and not line.startswith(" "):
            break
        body.append(line)
    return "\n".join(body)


def test_top_level_help_lists_every_command_with_one_line_and_an_example():
    text = help_text()
    commands = section(text, "Commands")
    for name in COMMANDS:
        example = command_object(name).examples[0].line
        assert f"  {name} " in commands and example in commands, name


@pytest.mark.parametrize("name", DATASET_COMMANDS)
def test_dataset_command_help_groups_its_options_and_gives_examples(name):
    text = help_text(name)
    headings = [line[:-1] for line in text.splitlines() if line.endswith(":") and not line.startswith(" ")]
    assert headings[-1] == "Examples"
    for heading in ("Output", "Batch"):
        assert heading in headings, heading
    assert any(h.startswith("Input") for h in headings) and any(h.startswith("Preprocessing") for h in headings)
    assert 3 <= section(text, "Examples").count("# ") <= 5
    cmd = command_object(name)
    ungrouped = [p.name for p in cmd.params if isinstance(p, click.Option) and group_of(p) is None]
    assert ungrouped == [], "every option of a dataset command belongs to a group"


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_example_uses_only_options_its_command_offers(name):
    cmd = command_object(name)
    assert 3 <= len(cmd.examples) <= 5, name
    for example in cmd.examples:
        for part in example.line.split("&&"):
            words = shlex.split(part)
            assert words[:1] == ["medconv"] and words[1] in COMMANDS, example.line
            target = command_object(words[1])
            if isinstance(target, click.Group):  # a command with subcommands (export nnunet ...): the subcommand's
                target = target.get_command(None, words[2])
            offered = {opt for p in target.params for opt in p.opts + p.secondary_opts}
            used = [w.split("=")[0] for w in words[2:] if w.startswith("-") and not w[1:2].isdigit()]
            assert set(used) <= offered, f"{example.line}: {set(used) - offered}"


@pytest.mark.parametrize("name, option, offered", [
    pytest.param("mhd2nii", "--on-tilt", False, id="mhd2nii-no-on-tilt"),
    pytest.param("mhd2nii", "--on-uneven", False, id="mhd2nii-no-on-uneven"),
    pytest.param("mhd2nii", "--tiff-spacing", False, id="mhd2nii-no-tiff-spacing"),
    pytest.param("tcia2nii", "--labels", False, id="tcia2nii-no-labels"),
    pytest.param("tcia2nii", "--tiff-spacing", False, id="tcia2nii-no-tiff-spacing"),
    pytest.param("tcia2nii", "--on-tilt", True, id="tcia2nii-on-tilt"),
    pytest.param("convert", "--on-tilt", True, id="convert-on-tilt"),
    pytest.param("convert", "--tiff-spacing", True, id="convert-tiff-spacing"),
    pytest.param("convert", "--labels", True, id="convert-labels"),
])
def test_options_are_offered_only_where_they_apply(tmp_path, capsys, name, option, offered):
    assert (option in help_text(name)) == offered
    if not offered:  # refused with exit 2 before anything is read
        (tmp_path / "src").mkdir()
        assert main([name, str(tmp_path / "src"), str(tmp_path / "out"), option, "error"]) == 2
        err = capsys.readouterr().err
        assert f"medconv {name} has no option {option}: it belongs to 'Input:" in err and "Did you mean" not in err
        assert not (tmp_path / "out").exists()


def test_a_new_option_group_reaches_the_option_objects_without_touching_the_others():
    """The pattern of cli/options.py's docstring, followed by a group defined only here."""
    def fields(values):
        return {Target.READ: {"tiff_spacing": (values["voxel"],) * 3}, Target.RUN: {"jobs": 1}}

    voxel_group = OptionGroup("Input: voxels", click.option("--voxel", type=float, default=0.5, help="Voxel size."),
                              fields=fields)

    @command(examples=(Example("try it", "medconv try --voxel 2"),))
    @voxel_group
    @click.option("--plain", is_flag=True, help="An option outside any group.")
    def try_it(plain: bool, options: ParsedOptions):
        click.echo(json.dumps({"plain": plain, "spacing": options.read.tiff_spacing, "jobs": options.run.jobs,
                               "on_tilt": options.read.on_tilt}))

    result = CliRunner().invoke(try_it, ["--voxel", "2", "--plain"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"plain": True, "spacing": [2.0, 2.0, 2.0], "jobs": 1, "on_tilt": "resample"}
    text = CliRunner().invoke(try_it, ["--help"]).output
    assert "Input: voxels:\n  --voxel FLOAT" in text and "Other options:\n  --plain" in text
    assert "Examples:\n  # try it\n  medconv try --voxel 2" in text


def test_two_groups_filling_one_field_is_refused():
    first = OptionGroup("A", click.option("--a", default=1), fields=lambda v: {Target.RUN: {"jobs": v["a"]}})
    second = OptionGroup("B", click.option("--b", default=2), fields=lambda v: {Target.RUN: {"jobs": v["b"]}})

    @command()
    @first
    @second
    def clash(options):
        pass

    result = CliRunner().invoke(clash, [])
    assert isinstance(result.exception, RuntimeError) and "RunOptions.jobs" in str(result.exception)


def _tiff_without_spacing(folder) -> np.ndarray:
    data = np.arange(4 * 6 * 5, dtype=np.uint16).reshape(4, 6, 5)  # pages, rows, columns
    folder.mkdir()
    tifffile.imwrite(folder / "stack.tif", data, photometric="minisblack")
    return data


def test_tiff_spacing_flag_reaches_the_reader(tmp_path):
    data = _tiff_without_spacing(tmp_path / "src")
    assert main(["convert", str(tmp_path / "src"), str(tmp_path / "out"), "--tiff-spacing", "0.5,0.25,2", "-q"]) == 0
    image = nib.load(str(tmp_path / "out" / "stack.nii.gz"))
    assert image.header.get_zooms() == (0.5, 0.25, 2.0)
    np.testing.assert_array_equal(np.asarray(image.dataobj), tifffile.imread(tmp_path / "src" / "stack.tif").T)
    assert image.shape == data.T.shape
    row = json.loads((tmp_path / "out" / "medconv-manifest.jsonl").read_text().splitlines()[0])
    assert "spacing" not in json.dumps(row.get("warnings"))


def test_tiff_spacing_warning_names_the_flag(tmp_path):
    _tiff_without_spacing(tmp_path / "src")
    assert main(["convert", str(tmp_path / "src"), str(tmp_path / "out"), "-q"]) == 0
    row = json.loads((tmp_path / "out" / "medconv-manifest.jsonl").read_text().splitlines()[0])
    assert "--tiff-spacing SX,SY,SZ" in json.dumps(row["warnings"])


@pytest.mark.parametrize("value", ["0", "1,2", "a,b,c", "-1,1,1"])
def test_bad_tiff_spacing_is_a_usage_error(tmp_path, capsys, value):
    _tiff_without_spacing(tmp_path / "src")
    assert main(["convert", str(tmp_path / "src"), str(tmp_path / "out"), "--tiff-spacing", value]) == 2
    assert "--tiff-spacing" in capsys.readouterr().err


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_option_is_documented(name):
    """A flag that exists only in code is a defect: each one is named on some docs/ page."""
    from pathlib import Path

    docs = "\n".join(page.read_text() for page in (Path(__file__).resolve().parent.parent / "docs").glob("*.md"))
    for param in command_object(name).params:
        if isinstance(param, click.Option) and param.name != "help":
            assert param.opts[-1] in docs, f"{name} {param.opts[-1]}"


def test_docs_show_the_real_top_level_help():
    from pathlib import Path

    page = (Path(__file__).resolve().parent.parent / "docs" / "cli.md").read_text()
    shown = page.split("$ medconv --help\n", 1)[1].split("```", 1)[0]
    assert shown == help_text()


def test_png_depth_flag_reaches_the_png_writer(tmp_path):
    """The PNG writer's hints name --png-depth: the flag exists and sets WriteOptions.png_depth."""
    from PIL import Image

    (tmp_path / "src").mkdir()
    Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8) * 3).save(tmp_path / "src" / "x.png")
    for depth, mode in (("16", "I;16"), ("8", "L")):
        out = tmp_path / f"out{depth}"
        assert main(["convert", str(tmp_path / "src" / "x.png"), str(out / "x.png"), "--png-depth", depth, "-q"]) == 0
        assert Image.open(out / "x.png").mode == mode
