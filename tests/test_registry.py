"""Dispatch of readers and writers, including a plugin registered as a third-party package would."""

import sys
import textwrap

import numpy as np
import pytest

import medconv
from medconv import registry
from medconv.errors import AmbiguousFormatError, MissingDependencyError, UnsupportedFormatError
from medconv.registry import PluginSpec, Registry


@pytest.fixture
def plugin_package(tmp_path, monkeypatch):
    """An installed-looking distribution 'medconv-toy' whose entry points add a '.toy' reader and writer."""
    package = tmp_path / "toy_format"
    package.mkdir()
    (package / "__init__.py").write_text(textwrap.dedent('''
        import json, numpy as np
        from medconv import Volume, Source

        class ToyReader:
            name = "toy"
            suffixes = (".toy",)
            def sniff(self, path):
                with open(path, "rb") as f:
                    return f.read(4) == b"TOY1"
            def discover(self, root):
                return iter(())
            def read(self, source, options):
                shape = tuple(json.loads(open(source.path, "rb").read()[4:]))
                return Volume(np.arange(np.prod(shape)).reshape(shape), spacing=(1, 1, 1),
                              meta={"source_format": "toy"})

        class ToyWriter:
            name = "toywriter"
            suffixes = (".toyout",)
            def write(self, volume, dest, options):
                with open(dest, "w") as f:
                    f.write(str(volume.shape))
                return [dest]
    '''))
    dist = tmp_path / "medconv_toy-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: medconv-toy\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[medconv.readers]\ntoy = toy_format:ToyReader\n\n[medconv.writers]\ntoywriter = toy_format:ToyWriter\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.readers.refresh()
    registry.writers.refresh()
    yield tmp_path
    registry.readers.refresh()
    registry.writers.refresh()
    sys.modules.pop("toy_format", None)


def test_entry_point_plugin_reads_and_writes(plugin_package, tmp_path):
    source = tmp_path / "a.toy"
    source.write_bytes(b"TOY1[2, 3, 4]")
    volume = medconv.read(source)
    assert volume.shape == (2, 3, 4) and volume.meta["source_format"] == "toy"
    assert registry.readers.specs["toy"].origin == "entry point of medconv-toy"
    written = medconv.write(volume, tmp_path / "out.toyout")
    assert (tmp_path / "out.toyout").read_text() == "(2, 3, 4)"
    assert written == [str(tmp_path / "out.toyout")]


def test_sniffing_finds_the_plugin_without_its_suffix(plugin_package, tmp_path):
    source = tmp_path / "no_suffix"
    source.write_bytes(b"TOY1[2, 2, 2]")
    assert registry.reader_for(source).name == "toy"


def test_builtin_readers_load_lazily():
    fresh = Registry("reader", registry.BUILTIN_READERS, "medconv.readers")
    assert fresh._loaded == {}
    assert fresh.get("nifti").name == "nifti"
    assert list(fresh._loaded) == ["nifti"]


def test_missing_dependency_names_the_extra():
    broken = Registry("reader", [PluginSpec("exotic", "no_such_module_xyz:Reader", extra="exotic")], "none")
    with pytest.raises(MissingDependencyError, match=r"medconv\[exotic\]"):
        broken.get("exotic")
    assert broken.available() == []


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(UnsupportedFormatError, match="known: nifti"):
        registry.readers.get("nonsense")


def test_unrecognised_file_is_a_clear_error(tmp_path):
    junk = tmp_path / "notes.txt"
    junk.write_text("hello")
    with pytest.raises(UnsupportedFormatError, match="no reader recognises this file") as info:
        medconv.read(junk)
    assert str(junk) in str(info.value)


def test_two_readers_claiming_one_file_is_ambiguous(tmp_path, monkeypatch):
    class Claims:
        suffixes = (".amb",)
        def __init__(self, name):
            self.name = name
        def sniff(self, path):
            return True
    monkeypatch.setattr(registry.readers, "available", lambda: [Claims("one"), Claims("two")])
    target = tmp_path / "x.amb"
    target.write_bytes(b"")
    with pytest.raises(AmbiguousFormatError, match="one, two"):
        registry.reader_for(target)


def test_explicit_name_wins_over_suffix(tmp_path):
    assert registry.reader_for(tmp_path / "x.whatever", "nifti").name == "nifti"


def test_longest_suffix_decides(tmp_path):
    assert registry.writer_for(tmp_path / "a.nii.gz").name == "nifti"
    assert registry.writer_for(tmp_path / "a.npz").name == "npz"
    with pytest.raises(UnsupportedFormatError, match="no writer"):
        registry.writer_for(tmp_path / "a.xyz")
    assert registry.writer_for_format("nii.gz")[1] == ".nii.gz"


@pytest.mark.parametrize("builtins", [registry.BUILTIN_READERS, registry.BUILTIN_WRITERS], ids=["readers", "writers"])
def test_builtin_specs_state_the_suffixes_their_plugins_claim(builtins):
    """Dispatch by suffix trusts the stated suffixes to leave other plugins unloaded: they must be the plugins' own."""
    for spec in builtins:
        assert spec.suffixes == tuple(registry._load(spec).suffixes), spec.name


def test_entry_points_are_seen_only_where_a_distribution_declares_them(plugin_package, monkeypatch):
    """Only the plugin's folder on the path (other tests' folders and finders never decide this one)."""
    from importlib.machinery import PathFinder

    monkeypatch.setattr(sys, "path", [str(plugin_package)])
    monkeypatch.setattr(sys, "meta_path", [PathFinder])
    assert registry._entry_points_may_exist()
    (plugin_package / "medconv_toy-1.0.dist-info" / "entry_points.txt").write_text("[console_scripts]\ntoy = x:y\n")
    assert not registry._entry_points_may_exist()
    zipped = plugin_package / "plugins.zip"
    zipped.write_bytes(b"")
    monkeypatch.setattr(sys, "path", [str(plugin_package), str(zipped)])
    assert registry._entry_points_may_exist()  # a zip on the path is read by importlib.metadata: never a false no
