"""Sphinx configuration for trioserial."""

import sys
from pathlib import Path

# Document the checkout being built, not whatever is installed.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

project = "trioserial"
author = "trioserial developers"
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
]
nitpicky = True
nitpick_ignore = [
    ("py:class", "trioserial._core.PortCore"),
    ("py:class", "Buffer"),
    ("py:class", "PortCore"),
    ("py:class", "trioserial.testing._pty._HasFileno"),  # "anything with fileno()"
    ("py:class", "trioserial._portwatch.WatchConfig"),  # tests' private _config (issue 18)
    ("py:class", "contextlib.AbstractAsyncContextManager"),
]
# CI reaches package registries only, so intersphinx inventories for Python,
# Trio, anyio and pyserial cannot be downloaded. References into those projects
# are left as plain text instead of failing the -W build; our own are checked.
nitpick_ignore_regex = [
    (r"py:.*", r"(trio|anyio|serial|os|socket|logging|enum|typing|collections)(\..*)?"),
    (
        r"py:.*",
        r"(OSError|BlockingIOError|TypeError|ValueError|TimeoutError|bytes|bytearray"
        r"|memoryview|int|float|str|bool|None|Exception|BaseException|object|Any|Path"
        r"|StopAsyncIteration|type|dict|list|tuple)",
    ),
    (r"py:.*", r"(re|codecs)(\..*)?"),  # issue 7 (Expect)
    (r"py:.*", r"(jumpstarter|uuid)(\..*)?"),  # Jumpstarter's Driver fields
]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
# Offline builds: intersphinx targets are resolved only if an inventory is
# cached; CI has no internet beyond package registries, so keep mapping empty
# and let nitpick_ignore name what cannot be resolved.
intersphinx_mapping: dict[str, tuple[str, str | None]] = {}
html_theme = "alabaster"
exclude_patterns = ["_build"]
# Docstrings say what a cancellation leaves behind in a section of its own,
# beside Args/Returns/Raises (trio's _abc.py states it the same way).
napoleon_custom_sections = ["Cancellation"]
