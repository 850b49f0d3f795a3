"""Sphinx configuration of the aiodimse documentation site.

Build (warnings are errors): ``python3 -m sphinx -W --keep-going -b html docs docs/_build``.
The pages are Markdown (MyST) so that the service slices can append to them; the
tables that mirror code (statuses, the PS3.8 state table) come from the code itself,
through the small extension in ``_ext/aiodimse_tables.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the aiodimse in this tree, not an installed one
sys.path.insert(0, str(HERE / "_ext"))

import aiodimse  # noqa: E402

project = "aiodimse"
author = "The aiodimse developers"
copyright = "the aiodimse developers"
release = aiodimse.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.intersphinx",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "aiodimse_tables",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "**/_*.md"]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_format = "short"
autodoc_preserve_defaults = True
autodoc_inherit_docstrings = False
nitpicky = False
intersphinx_mapping = {}  # no network at build time: references stay local

html_theme = "furo"
html_title = f"aiodimse {release}"
html_static_path = ["_static"]
html_css_files = ["aiodimse.css"]
