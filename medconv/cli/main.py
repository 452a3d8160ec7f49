"""The ``medconv`` click group, its lazy command table, and the error-to-exit-code boundary.

Exit codes (also owned by a batch ``Report``): 0 all converted or skipped, 1 some
units failed, 2 usage error or nothing could start, 3 nothing found, 130 interrupted.
A MedconvError prints as one line. So does a fault of the machine (permission
denied, disk full, read-only destination, a file where a folder is needed): a
user error naming the path and what to do, exit 2 when the run could not start
(the destination cannot be made or locked) and 1 when a conversion failed on it.
Anything else is a bug: one line, plus where the traceback was logged (the
``--log`` file when there is one, else a file in the temporary folder).
"""

from __future__ import annotations

import gc
import importlib
import importlib.util
import os
import sys

import click

from .._version import __version__
from ..errors import (DestinationLockedError, EnvironmentFaultError, MedconvError, NothingFoundError, UsageError,
                      environment_fault)

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NOTHING = 0, 1, 2, 3

#: command name -> "module:function", imported only when the command runs or help lists it.
#: A new command is one module (a function decorated with ``cli.options.command``) and one line here.
COMMANDS = {
    "tcia2nii": "medconv.cli.datasets:tcia2nii",
    "mhd2nii": "medconv.cli.datasets:mhd2nii",
    "dcm2png": "medconv.cli.dcm2png:dcm2png",
    "convert": "medconv.cli.convert:convert",
    "scan": "medconv.cli.scan:scan",
    "info": "medconv.cli.info:info",
    "sample": "medconv.cli.sample:sample",
    "export": "medconv.cli.export:export",
}


class LazyGroup(click.Group):
    """A click group whose commands are imported on first use; its help shows each command's first example."""

    def list_commands(self, ctx):
        return [name for name, target in COMMANDS.items() if importlib.util.find_spec(target.split(":")[0])]

    def get_command(self, ctx, name):
        target = COMMANDS.get(name)
        if target is None:
            return None
        module_name, _, attribute = target.partition(":")
        if importlib.util.find_spec(module_name) is None:
            return None
        return getattr(importlib.import_module(module_name), attribute)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """One line per command, its first example below it (never wrapped)."""
        commands = [(name, self.get_command(ctx, name)) for name in self.list_commands(ctx)]
        commands = [(name, command) for name, command in commands if command is not None and not command.hidden]
        if not commands:
            return
        width = max(len(name) for name, _ in commands)
        with formatter.section("Commands"):
            indent = " " * formatter.current_indent
            for name, command in commands:
                summary = command.get_short_help_str(limit=formatter.width - width - formatter.current_indent - 2)
                formatter.write(f"{indent}{name:<{width}}  {summary}\n")
                examples = getattr(command, "examples", ())
                if examples:
                    formatter.write(f"{indent}{'':<{width}}    {examples[0].line}\n")
        formatter.write_paragraph()
        formatter.write_text("Run 'medconv COMMAND --help' for a command's options and more examples. "
                             "Exit codes: 0 done, 1 some units failed, 2 usage error, 3 nothing found.")


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", "-V", prog_name="medconv")
def cli():
    """Convert and preprocess medical-imaging datasets (DICOM, MetaImage, NIfTI, TIFF) into NIfTI, NRRD,
    MetaImage or npz: whole folders at once, in parallel, resumable, with a manifest."""


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns (and, as a console script, exits with) the exit code."""
    if argv is None:  # the console script (or ``python -m medconv``): this process is ours
        set_process_defaults()
    from ..logs import configure_logging

    configure_logging(0, None)  # errors only on the terminal, other libraries' messages routed through medconv's
    try:
        result = cli.main(args=argv, prog_name="medconv", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("medconv: interrupted", err=True)
        code = 130
    except click.exceptions.ClickException as exc:
        exc.show()
        code = EXIT_USAGE
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except NothingFoundError as exc:
        click.echo(f"medconv: {exc.one_line()}", err=True)
        code = EXIT_NOTHING
    except (UsageError, DestinationLockedError, EnvironmentFaultError) as exc:  # nothing could start
        click.echo(f"medconv: {exc.one_line()}", err=True)
        code = EXIT_USAGE
    except MedconvError as exc:
        click.echo(f"medconv: {exc.one_line()}", err=True)
        code = EXIT_FAILED
    except KeyboardInterrupt:
        click.echo("medconv: interrupted", err=True)
        code = 130
    except OSError as exc:
        fault = environment_fault(exc)
        if fault is None:
            code = _internal_error(exc)
        else:  # the machine said no (permission, space, read-only ...): the user's to fix, not a bug
            click.echo(f"medconv: {fault.one_line()}", err=True)
            code = EXIT_FAILED
    except Exception as exc:  # a bug: one line for the user, the traceback in a log file
        code = _internal_error(exc)
    else:
        code = result if isinstance(result, int) else EXIT_OK
    if __name__ == "__main__" or argv is None:  # the process ends here, every file closed
        gc.freeze()  # its objects need no last collection: -39 M of 1.52 G instructions, enhanced 20-file run
        sys.exit(code)
    return code


def set_process_defaults() -> None:
    """What the console script sets for its own process: OpenBLAS gets one thread unless the user chose a number.

    numpy's OpenBLAS starts one thread per core when numpy is imported, and they
    spin: 50-60 ms of CPU on every run of the 2-core development machine (``python -c
    'import numpy'``: 139 -> 89 ms CPU, best of 21), taken from whatever else the cores
    do. medconv has no use for them: its only large matrix products (the separable
    resampling) run under ``threadpool_limits(1)`` on its own threads, and the rest
    are 4x4 affines. Set before numpy is imported (this module does not import it);
    the batch's worker processes inherit it. ``OMP_NUM_THREADS``, which caps
    medconv's own threads, is left alone. ``scripts/bench_startup.py`` calls it too,
    as its driver runs ``main(argv)``.
    """
    if "numpy" not in sys.modules:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def _internal_error(exc: BaseException) -> int:
    """Report a bug: one line, the traceback in the ``--log`` file if there is one, else in the temp folder."""
    import logging
    import tempfile  # here, not at start-up: only a bug needs them
    import traceback

    from ..logs import log_file_path

    where = log_file_path()
    if where:
        logging.getLogger("medconv.cli").debug("internal error", exc_info=True)
    else:
        where = os.path.join(tempfile.gettempdir(), f"medconv-crash-{os.getpid()}.log")
        try:
            with open(where, "w", encoding="utf-8") as handle:
                traceback.print_exc(file=handle)
        except OSError:
            where = "(no file could be written)"
    click.echo(f"medconv: internal error: {type(exc).__name__}: {exc} (a bug; traceback in {where})", err=True)
    return EXIT_FAILED


if __name__ == "__main__":
    main()
