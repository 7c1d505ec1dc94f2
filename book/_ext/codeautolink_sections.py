"""sphinx-codeautolink on pages with sphinx-exercise's exercises and solutions.

sphinx-codeautolink (0.20) keeps a stack of section titles while it reads a
page: it pushes a title when it meets one and pops one when it leaves a section.
sphinx-exercise wraps each exercise's and solution's body in a ``section`` without
a title, so leaving it pops a title that was never pushed and the build stops
(``IndexError: pop from empty list``). Here each section remembers the stack's
height on entry and restores it on exit: the same stack for titled sections, an
untouched one for untitled ones.
"""

from __future__ import annotations

from sphinx_codeautolink.extension.block import CodeBlockAnalyser

_visit_section = CodeBlockAnalyser.visit_section


def visit_section(self: CodeBlockAnalyser, node) -> None:
    self.__dict__.setdefault("section_heights", []).append(len(self.title_stack))
    _visit_section(self, node)


def depart_section(self: CodeBlockAnalyser, node) -> None:
    del self.title_stack[self.section_heights.pop() :]


def setup(app):
    app.setup_extension("sphinx_codeautolink")
    CodeBlockAnalyser.visit_section = visit_section
    CodeBlockAnalyser.depart_section = depart_section
    return {"parallel_read_safe": True, "parallel_write_safe": True}
