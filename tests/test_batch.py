"""The batch engine on generated trees: good units convert, bad ones fail alone, the manifest tells the truth."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from batch_trees import affine_for, output_bytes, temporaries, tree_checksums, unit_array, write_nifti_tree
from medconv.atomic import temporary_name
from medconv.batch import RunOptions, UnitJob, discover_sources, make_plan, read_manifest, run_plan
from medconv.batch.report import EXIT_FAILED, EXIT_OK
from medconv.errors import NotAVolumeError, NothingFoundError, OutputCollisionError, UnreadableFileError
from medconv.layout import output_stem, sanitize_component
from medconv.registry import PluginSpec, readers
from medconv.source import Source
from medconv.volume import Volume


def run(src: Path, dest: Path, jobs: int = 1, **run_options):
    plan = make_plan(discover_sources(str(src), ["nifti"], str(dest)), str(dest), root=str(src))
    return plan, run_plan(plan, UnitJob(fmt="nii.gz"), RunOptions(jobs=jobs, progress=False, **run_options))


def test_good_units_convert_and_bad_ones_fail_with_a_reason(tmp_path):
    tree = write_nifti_tree(tmp_path / "src", n_good=9)
    plan, report = run(tmp_path / "src", tmp_path / "out", jobs=2)
    assert report.exit_code == EXIT_FAILED
    assert report.counts == {"converted": 9, "failed": 2}
    rows = {row["unit_id"]: row for row in read_manifest(str(tmp_path / "out" / "medconv-manifest.jsonl"))}
    assert len(rows) == len(plan.units) == 11
    for index, path in enumerate(tree["good"]):
        unit_id = f"group{index % 3}/case{index:03d}"
        row = rows[unit_id]
        assert row["status"] == "converted" and row["reason"] == ""
        output = tmp_path / "out" / row["output"]
        image = nib.load(str(output))  # nibabel is the reference reader
        np.testing.assert_array_equal(np.asarray(image.dataobj), unit_array(index))
        np.testing.assert_allclose(image.affine, affine_for(index), atol=1e-5)
        assert row["shape"] == [12, 10, 8] and row["dtype"] == "int16"
        assert (tmp_path / "out" / row["output"].replace(".nii.gz", ".json")).is_file()
    for bad in ("broken/truncated", "broken/garbage"):
        assert rows[bad]["status"] == "failed"
        assert rows[bad]["error_type"] == UnreadableFileError.code
        assert bad.split("/")[1] in rows[bad]["reason"]
        assert rows[bad]["output"] == ""
        assert not (tmp_path / "out" / bad.replace("/", os.sep)).with_suffix(".nii.gz").exists()
    # the CSV says the same as the JSON Lines file, and both agree with the disk
    with open(tmp_path / "out" / "medconv-manifest.csv", newline="") as handle:
        csv_rows = {row["unit_id"]: row for row in csv.DictReader(handle)}
    assert {k: r["status"] for k, r in csv_rows.items()} == {k: r["status"] for k, r in rows.items()}
    on_disk = {p for p in output_bytes(tmp_path / "out") if p.endswith(".nii.gz")}
    assert on_disk == {r["output"] for r in rows.values() if r["status"] == "converted"}
    assert temporaries(tmp_path / "out") == []
    summary = json.loads((tmp_path / "out" / "medconv-summary.json").read_text())
    assert summary["converted"] == 9 and summary["failed"] == 2 and summary["exit_code"] == EXIT_FAILED


def test_input_tree_is_not_modified(tmp_path):
    write_nifti_tree(tmp_path / "src", n_good=5)
    before = tree_checksums(tmp_path / "src")
    run(tmp_path / "src", tmp_path / "out", jobs=2)
    run(tmp_path / "src", tmp_path / "out", jobs=2, overwrite=True)
    assert tree_checksums(tmp_path / "src") == before


def test_output_inside_the_dataset_folder_is_not_rediscovered(tmp_path):
    write_nifti_tree(tmp_path / "src", n_good=3, bad=False)
    before = tree_checksums(tmp_path / "src")
    run(tmp_path / "src", tmp_path / "src" / "converted")
    plan, report = run(tmp_path / "src", tmp_path / "src" / "converted")
    assert len(plan.units) == 3 and report.counts == {"skipped": 3}
    after = {k: v for k, v in tree_checksums(tmp_path / "src").items() if not k.startswith("converted")}
    assert after == before


@pytest.mark.parametrize("fmt", [pytest.param("nii.gz", id="nii-gz"), pytest.param("npz", id="npz")])
def test_two_jobs_give_the_same_bytes_as_one(tmp_path, fmt):
    write_nifti_tree(tmp_path / "src", n_good=8)
    outputs = []
    for jobs in (1, 2):
        dest = tmp_path / f"out{jobs}"
        plan = make_plan(discover_sources(str(tmp_path / "src"), ["nifti"]), str(dest), fmt=fmt)
        run_plan(plan, UnitJob(fmt=fmt), RunOptions(jobs=jobs, progress=False))
        outputs.append(output_bytes(dest))
    assert len(outputs[0]) == 16  # 8 images + 8 sidecars
    assert outputs[0] == outputs[1]


def test_rerun_skips_complete_outputs_and_redoes_incomplete_ones(tmp_path):
    write_nifti_tree(tmp_path / "src", n_good=4, bad=False)
    dest = tmp_path / "out"
    run(tmp_path / "src", dest)
    first = dest / "group0" / "case000.nii.gz"
    stamp = first.stat().st_mtime_ns
    (dest / "group1" / "case001.json").unlink()  # image written, sidecar not: incomplete
    leftover = Path(temporary_name(str(dest / "group2" / "case002.nii.gz")))
    leftover.write_bytes(b"half a file")
    plan, report = run(tmp_path / "src", dest)
    assert report.counts == {"skipped": 3, "converted": 1}
    rows = {row["unit_id"]: row for row in read_manifest(str(dest / "medconv-manifest.jsonl"))}
    assert rows["group1/case001"]["status"] == "converted"
    assert rows["group0/case000"]["status"] == "skipped"
    assert rows["group0/case000"]["shape"] == [12, 10, 8]  # carried over from the earlier manifest
    assert first.stat().st_mtime_ns == stamp
    assert not leftover.exists() and temporaries(dest) == []
    plan, report = run(tmp_path / "src", dest, overwrite=True)
    assert report.counts == {"converted": 4} and report.exit_code == EXIT_OK


def test_nothing_found(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    with pytest.raises(NothingFoundError):
        make_plan(discover_sources(str(tmp_path / "empty"), ["nifti"]), str(tmp_path / "out"))


def test_two_files_with_one_output_name_are_refused_at_plan_time(tmp_path):
    write_nifti_tree(tmp_path / "src", n_good=1, bad=False)
    image = nib.load(str(tmp_path / "src" / "group0" / "case000.nii.gz"))
    nib.save(image, str(tmp_path / "src" / "group0" / "case000.nii"))  # same stem, other suffix
    with pytest.raises(OutputCollisionError, match="same output") as error:
        make_plan(discover_sources(str(tmp_path / "src"), ["nifti"]), str(tmp_path / "out"))
    assert "{id}_{ext}" in error.value.hint
    plan = make_plan(discover_sources(str(tmp_path / "src"), ["nifti"]), str(tmp_path / "out"), template="{id}_{ext}")
    assert sorted(u.relative for u in plan.units) == ["group0/case000_nii.gz.nii.gz", "group0/case000_nii.nii.gz"]


def test_an_output_never_replaces_an_input(tmp_path):
    write_nifti_tree(tmp_path / "src", n_good=2, bad=False)
    with pytest.raises(OutputCollisionError, match="replace an input"):
        make_plan(discover_sources(str(tmp_path / "src"), ["nifti"]), str(tmp_path / "src"))


def _dicom_like(uid: str, number=3, unit_id=None, **info) -> Source:
    fields = dict(patient_id="LIDC-IDRI-0001", study_date="20000101", series_number=number, modality="CT",
                  series_description="Chest", series_uid=uid)
    fields.update(info)
    return Source(id=unit_id or uid, reader="fake", paths=(f"/data/{uid}/1.dcm",), root="/data", info=fields)


def test_dicom_series_sharing_a_name_get_a_uid_fragment(tmp_path):
    sources = [_dicom_like("1.2.3.4.55555501"), _dicom_like("1.2.3.4.55555502"), _dicom_like("1.2.9", number=4)]
    plan = make_plan(sources, str(tmp_path / "out"))
    names = [unit.relative for unit in plan.units]
    assert names == ["LIDC-IDRI-0001/20000101_3_CT_Chest_55555501.nii.gz",
                     "LIDC-IDRI-0001/20000101_3_CT_Chest_55555502.nii.gz",
                     "LIDC-IDRI-0001/20000101_4_CT_Chest.nii.gz"]
    assert len(plan.notes) == 2


def test_series_split_from_one_uid_still_get_distinct_names(tmp_path):
    sources = [_dicom_like("1.2.3", unit_id="a"), _dicom_like("1.2.3", unit_id="b")]
    plan = make_plan(sources, str(tmp_path / "out"))
    assert len({unit.relative for unit in plan.units}) == 2


@pytest.mark.parametrize("value, expected", [
    pytest.param("../../etc/passwd", "etc_passwd", id="parent-traversal"),
    pytest.param("a/b\\c", "a_b_c", id="separators"),
    pytest.param("T1 \x00\x1bMPRAGE\n", "T1_MPRAGE", id="control-characters"),
    pytest.param("...", "unknown", id="only-dots"),
    pytest.param("", "unknown", id="empty"),
    pytest.param("Thorax 1.0 B31f", "Thorax_1.0_B31f", id="kept-readable"),
])
def test_header_values_are_sanitised(value, expected):
    assert sanitize_component(value) == expected


def test_absurdly_long_header_values_are_cut():
    name = sanitize_component("x" * 5000)
    assert len(name) <= 120 and name != sanitize_component("x" * 4999 + "y")


def test_name_template_uses_header_facts_and_never_escapes_the_destination():
    source = _dicom_like("1.2.3", series_description="../../evil")
    assert output_stem(source, "{patient_id}/{series_description}") == "LIDC-IDRI-0001/evil"
    assert output_stem(source, "{missing_key}_{modality}") == "CT"
    assert output_stem(source, "{missing_key}/{modality}") == "unknown/CT"
    file_source = Source(id="subset0/1.3.6.1.4.1.14519.5.2.1.6279.6001.1055", reader="metaimage", paths=("x.mhd",))
    assert output_stem(file_source) == "subset0/1.3.6.1.4.1.14519.5.2.1.6279.6001.1055"


class FakeReader:
    """Units whose id says what happens: ok, excluded, typed failure, or a bug."""

    name = "fake"
    suffixes = (".fake",)

    def sniff(self, path):
        return path.endswith(".fake")

    def discover(self, root):
        for name in sorted(os.listdir(root)):
            if name.endswith(".fake"):
                info = {"excluded": "RTSTRUCT: not an image"} if name.startswith("rtstruct") else {}
                yield Source(id=name[:-5], reader=self.name, paths=(os.path.join(root, name),), root=root, info=info)

    def read(self, source, options):
        if source.info.get("excluded"):
            raise NotAVolumeError(source.info["excluded"], source.path)
        if source.id.startswith("localizer"):
            raise NotAVolumeError("a localizer, not a volume", source.path)
        if source.id.startswith("bug"):
            raise KeyError("a bug in a reader")
        return Volume(np.ones((3, 4, 5), np.int16), spacing=(1, 1, 1))


@pytest.fixture
def fake_reader(monkeypatch):
    monkeypatch.setitem(readers.specs, "fake", PluginSpec("fake", "test_batch:FakeReader"))
    monkeypatch.setitem(readers._loaded, "fake", FakeReader())
    return readers


def test_excluded_units_and_internal_errors_are_recorded_and_the_batch_goes_on(tmp_path, fake_reader):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("ok1", "ok2", "rtstruct", "localizer", "bug"):
        (src / f"{name}.fake").write_text(name)
    plan = make_plan(discover_sources(str(src), ["fake"]), str(tmp_path / "out"))
    report = run_plan(plan, UnitJob(), RunOptions(jobs=1, progress=False))
    rows = {row["unit_id"]: row for row in read_manifest(str(tmp_path / "out" / "medconv-manifest.jsonl"))}
    assert {k: r["status"] for k, r in rows.items()} == {
        "ok1": "converted", "ok2": "converted", "rtstruct": "excluded", "localizer": "excluded", "bug": "failed"}
    assert "RTSTRUCT: not an image" in rows["rtstruct"]["reason"]
    assert plan.units[[u.id for u in plan.units].index("rtstruct")].excluded == "RTSTRUCT: not an image"
    assert "localizer" in rows["localizer"]["reason"]
    assert rows["bug"]["error_type"] == "internal" and "KeyError" in rows["bug"]["traceback"]
    log = Path(report.log_path).read_text()
    assert "unit bug" in log and "KeyError: 'a bug in a reader'" in log
    assert report.internal_errors == 1 and report.exit_code == EXIT_FAILED


def test_progress_shows_done_total_and_failures_on_a_terminal(tmp_path):
    import io

    from rich.console import Console

    write_nifti_tree(tmp_path / "src", n_good=3)
    plan = make_plan(discover_sources(str(tmp_path / "src"), ["nifti"]), str(tmp_path / "out"))
    screen = io.StringIO()
    terminal = Console(file=screen, force_terminal=True, width=150)
    report = run_plan(plan, UnitJob(), RunOptions(jobs=1, progress=True), console=terminal)
    report.render(terminal)
    text = screen.getvalue()
    assert "5/5" in text and "2 failed" in text and "units/s" in text
    assert "broken/garbage" in text and "medconv-manifest.csv" in text

    quiet = io.StringIO()
    run_plan(plan, UnitJob(), RunOptions(jobs=1, progress=True), console=Console(file=quiet))  # not a terminal
    assert quiet.getvalue() == ""
