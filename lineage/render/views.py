"""Text and notebook views of anything rich can print (the query layer's answers, a
list of nodes): the table the CLI prints, as plain text for ``str()``/``print()`` and
as an HTML copy for Jupyter's ``_repr_html_``. Without them a notebook showed the
answers' dataclass reprs: a diff as 4 KB of nested node dumps."""

from __future__ import annotations

import io
from typing import Any

#: the width the views are laid out at (a notebook cell, a wide terminal)
WIDTH = 120


def _console(out: io.StringIO, *, record: bool = False) -> Any:
    from rich.console import Console

    # (force_jupyter off: in a kernel rich would display instead of writing to ``out``)
    return Console(file=out, width=WIDTH, color_system=None if not record else "truecolor", highlight=False,
                   soft_wrap=False, force_jupyter=False, force_terminal=False, record=record)


def as_text(renderable: Any) -> str:
    """What ``lineage`` would print for it, as plain text."""
    out = io.StringIO()
    _console(out).print(renderable)
    return out.getvalue().rstrip("\n")


def as_html(renderable: Any) -> str:
    """The same as an HTML fragment (rich escapes every string), for a notebook."""
    console = _console(io.StringIO(), record=True)
    console.print(renderable)
    return console.export_html(inline_styles=True, code_format=(
        '<pre style="font-family:Menlo,\'DejaVu Sans Mono\',consolas,monospace;font-size:12px;'
        'line-height:1.2;white-space:pre;overflow-x:auto">{code}</pre>'))
