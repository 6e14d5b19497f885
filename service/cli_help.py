"""Click's help conventions for Lede's commands: `--index PATH`, `SOURCE...`, flags bare.

Typer 0.2x writes a type column (`--json <bool>`, `sources <list[Path]>`) and braces in the
usage line (`{sources}...`). This command class keeps Typer's help texts and extras
(`[default: 512; x>=1]`) and names each parameter the way Click does.
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperCommand

_METAVARS = {"Path": "PATH", "str": "TEXT", "int": "INTEGER", "float": "FLOAT"}


def _argument_name(param: Any) -> str:
    name = str(param.metavar or param.name.upper())
    return name if param.nargs == 1 or name.endswith("...") else f"{name}..."


def _option_name(param: Any) -> str:
    names = ", ".join(sorted(param.opts, key=len))
    if param.is_flag or param.count:
        return names
    if param.metavar:
        return f"{names} {param.metavar}"
    bare = str(param.bare_type())
    bare = bare[5:-1] if bare.startswith("list[") else bare  # a repeatable option
    return f"{names} {_METAVARS.get(bare, bare.upper())}"


class PlainHelpCommand(TyperCommand):
    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name == "argument":
                name = _argument_name(param)
                pieces.append(name if param.required else f"[{name}]")
        return pieces

    def format_options(self, ctx: Any, formatter: Any) -> None:
        sections: dict[str, list[tuple[str, str]]] = {"Arguments": [], "Options": []}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is None:
                continue
            if param.param_type_name == "argument":
                sections["Arguments"].append((_argument_name(param), record[1]))
            else:
                sections["Options"].append((_option_name(param), record[1]))
        for title, rows in sections.items():
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)
