"""How commands declare their options, show them grouped in ``--help``, and turn them into option objects.

A command's options come in **groups** (:class:`OptionGroup`): a heading for
``--help``, the click options under it, and one function that says which fields
of which frozen option object the parsed values fill (a :class:`Target`). A
:class:`MedconvCommand` prints each group under its own heading, then the
command's examples, and calls the command with one :class:`ParsedOptions`
(keyword ``options``) built from all of its groups. Options outside any group
reach the command as ordinary keywords. Nothing here holds state: the values
travel as frozen objects (``ReadOptions``, ``WriteOptions``, ``RunOptions``,
:class:`DatasetOptions`) to the library and its worker processes.

The groups live one or a few per module: ``input_options`` (readers and their
policies), ``output_options`` (format, naming, sidecars, manifest, previews),
``transform_options`` (preprocessing), ``batch_options`` (workers, dry run,
messages).

Adding an option group (e.g. annotation options)
------------------------------------------------
1. A new module, ``medconv/cli/annotation_options.py``::

       import click
       from .options import OptionGroup, Target

       def _fields(values):                      # parsed values, by parameter name
           return {Target.READ: {"annotations": values["annotations"]}}

       annotation_options = OptionGroup(
           "Input: annotations",                 # its heading in --help
           click.option("--annotations/--no-annotations", default=True, help="..."),
           fields=_fields,
       )

2. The field it fills exists on its target: ``Target.READ`` is ``ReadOptions``
   (``medconv/options.py``), ``Target.WRITE`` ``WriteOptions``, ``Target.RUN``
   ``RunOptions`` (``medconv/batch/run.py``), ``Target.DATASET`` :class:`DatasetOptions`
   (here). Two groups may not fill the same field.
3. ``@annotation_options`` on each command it applies to (``cli/datasets.py``,
   ``cli/convert.py``), at the place its heading should appear in ``--help``.

No other group, builder or command body changes. A value that is wrong on its
own is refused while parsing (a click ``callback`` raising ``click.BadParameter``);
a combination that is wrong is refused by ``fields`` raising ``click.BadParameter``
(exit code 2 either way).

Adding a command: one module whose function is decorated with
``@command(examples=...)`` (plus its groups), and one line in ``COMMANDS``
(``cli/main.py``). Its first example is shown by ``medconv --help``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional, Sequence

import click

from ..options import ReadOptions, WriteOptions

if TYPE_CHECKING:  # the batch package loads when a command runs, not for --help
    from ..batch.run import RunOptions


class Target(enum.Enum):
    """The frozen option object a group's values fill."""

    READ = "ReadOptions"
    WRITE = "WriteOptions"
    RUN = "RunOptions"
    DATASET = "DatasetOptions"


@dataclass(frozen=True)
class DatasetOptions:
    """What a dataset command asks besides reading, writing and running.

    Parameters
    ----------
    fmt:
        Output format (a writer suffix without its dot: ``nii.gz``, ``npz`` ...).
    template:
        Output name template (:mod:`medconv.layout`), ``None`` for the default.
    dry_run:
        Print the plan and stop.
    readers:
        Reader names to use; empty for the command's own (or all).
    preprocessing:
        The ``Volume -> Volume`` steps to apply, ``None`` for none.
    resize:
        A 2D resize (``--size``, :class:`~medconv.transforms.resize2d.Resize2D`) run after
        ``preprocessing``, or ``None``.
    boxes:
        A box table to move into the outputs' frames after the run
        (:class:`~medconv.transforms.box_export.BoxSource`), or ``None``.
    """

    fmt: str = "nii.gz"
    template: Optional[str] = None
    dry_run: bool = False
    readers: tuple[str, ...] = ()
    preprocessing: Optional[Callable[[Any], Any]] = None
    resize: Optional[Any] = None
    boxes: Optional[Any] = None

    @property
    def transform(self) -> Optional[Callable[[Any], Any]]:
        """Every per-unit step: ``preprocessing``, then ``resize``; ``None`` for none."""
        if self.resize is None:
            return self.preprocessing
        from ..transforms.resize2d import with_resize

        return with_resize(self.preprocessing, self.resize)


@dataclass(frozen=True)
class ParsedOptions:
    """Every option object a command's groups produced (defaults for the groups it does not have)."""

    read: ReadOptions
    write: WriteOptions
    run: "RunOptions"
    dataset: DatasetOptions


FieldsFunction = Callable[[Mapping[str, Any]], Mapping[Target, Mapping[str, Any]]]


@dataclass(frozen=True)
class OptionGroup:
    """A heading in ``--help``, the options under it, and where their values go.

    Use it as a decorator on a command function (like ``click.option``); see the
    module docstring for the pattern.
    """

    title: str
    options: tuple[Callable, ...]
    fields: FieldsFunction

    def __init__(self, title: str, *options: Callable, fields: FieldsFunction):
        object.__setattr__(self, "title", title)
        object.__setattr__(self, "options", options)
        object.__setattr__(self, "fields", fields)

    def __call__(self, function: Callable) -> Callable:
        before = len(getattr(function, "__click_params__", ()))
        for option in reversed(self.options):
            function = option(function)
        for param in function.__click_params__[before:]:
            param.medconv_group = self  # read by MedconvCommand (help headings, ParsedOptions)
        return function


def group_of(param: click.Parameter) -> OptionGroup | None:
    """The option group ``param`` was declared in, if any."""
    return getattr(param, "medconv_group", None)


def build_options(groups_values: Sequence[tuple[OptionGroup, Mapping[str, Any]]]) -> ParsedOptions:
    """One :class:`ParsedOptions` from each group's parsed values (in declaration order)."""
    from ..batch.run import RunOptions

    filled: dict[Target, dict[str, Any]] = {target: {} for target in Target}
    owner: dict[tuple[Target, str], str] = {}
    for group, values in groups_values:
        for target, values_by_field in group.fields(values).items():
            for name, value in values_by_field.items():
                earlier = owner.setdefault((target, name), group.title)
                if earlier != group.title:
                    raise RuntimeError(f"option groups {earlier!r} and {group.title!r} both fill {target.value}.{name}")
                filled[target][name] = value
    return ParsedOptions(read=ReadOptions(**filled[Target.READ]), write=WriteOptions(**filled[Target.WRITE]),
                         run=RunOptions(**filled[Target.RUN]), dataset=DatasetOptions(**filled[Target.DATASET]))


@dataclass(frozen=True)
class Example:
    """One example in a command's ``--help``: what it does, and the command line."""

    what: str
    line: str


class MedconvCommand(click.Command):
    """A click command whose help shows its option groups under their headings, then its examples.

    When the command has option groups, its function receives ``options=`` (a
    :class:`ParsedOptions`) instead of the groups' values one by one.
    """

    def __init__(self, *args, examples: Sequence[Example] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.examples = tuple(examples)

    def option_groups(self) -> list[OptionGroup]:
        """The command's groups, in the order they appear in ``--help``."""
        groups: list[OptionGroup] = []
        for param in self.params:
            group = group_of(param)
            if group is not None and group not in groups:
                groups.append(group)
        return groups

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        by_group: dict[OptionGroup | None, list[tuple[str, str]]] = {group: [] for group in self.option_groups()}
        by_group[None] = []
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is not None and not isinstance(param, click.Argument):
                by_group[group_of(param)].append(record)
        for group, records in by_group.items():
            if records:
                with formatter.section(group.title if group else "Other options"):
                    formatter.write_dl(records)

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_epilog(ctx, formatter)
        if self.examples:
            with formatter.section("Examples"):
                write_examples(formatter, self.examples)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.NoSuchOption as error:
            elsewhere = offered_elsewhere(error.option_name, ctx)
            if elsewhere:  # say where it applies instead of guessing a similar name
                raise click.NoSuchOption(error.option_name, f"{ctx.command_path} has no option {error.option_name}: "
                                         f"{elsewhere}", ctx=ctx) from None
            raise

    def invoke(self, ctx: click.Context) -> Any:
        groups = self.option_groups()
        if groups:
            grouped = {group: {} for group in groups}
            plain = {}
            params = {param.name: param for param in self.params}
            for name, value in ctx.params.items():
                group = group_of(params[name]) if name in params else None
                (grouped[group] if group is not None else plain)[name] = value
            ctx.params = {**plain, "options": build_options(list(grouped.items()))}
        return super().invoke(ctx)


def offered_elsewhere(option_name: str, ctx: click.Context) -> str | None:
    """``"it belongs to 'Input: DICOM' (medconv tcia2nii, medconv convert)"`` when other commands offer the option."""
    root = ctx.find_root()
    group = root.command
    if not isinstance(group, click.Group):
        return None
    offering, heading = [], None
    for name in group.list_commands(root):
        other = group.get_command(root, name)
        if other is None or other is ctx.command:
            continue
        for param in other.params:
            if option_name in (*param.opts, *param.secondary_opts):
                offering.append(f"{root.info_name} {name}")
                heading = heading or (group_of(param).title if group_of(param) else None)
    if not offering:
        return None
    what = f"it belongs to '{heading}', offered by " if heading else "offered by "
    return what + ", ".join(offering)


def write_examples(formatter: click.HelpFormatter, examples: Sequence[Example]) -> None:
    """Each example as a ``# what`` line and the command line below it, never wrapped."""
    indent = " " * formatter.current_indent
    for number, example in enumerate(examples):
        if number:
            formatter.write("\n")
        formatter.write(f"{indent}# {example.what}\n{indent}{example.line}\n")


def command(*, examples: Sequence[Example] = (), short_help: str | None = None, **kwargs) -> Callable:
    """``click.command`` for a :class:`MedconvCommand` with these examples (3-5 real command lines)."""
    return click.command(cls=MedconvCommand, examples=examples, short_help=short_help, **kwargs)
