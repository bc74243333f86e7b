"""Re-run the ```python blocks of a docs page in order (one session) and
rewrite the ```text block under each with what it prints now, except blocks
marked "# output varies". Review the diff before committing.

    python tools/refresh_docs.py docs/how-it-works.md
"""

from __future__ import annotations

import contextlib
import io
import re
import sys

BLOCKS = re.compile(r"```python\n(.*?)```(\n\n```text\n)(.*?)```", re.S)


def refresh(path):
    text = open(path).read()
    namespace = {"__name__": "__doc__"}
    out_parts, last = [], 0
    for k, m in enumerate(BLOCKS.finditer(text), 1):
        code = m.group(1)
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            exec(compile(code, f"{path} block {k}", "exec"), namespace)
        shown = m.group(3) if "# output varies" in code else buf.getvalue()
        out_parts.append(text[last:m.start(3)] + shown)
        last = m.end(3)
    out_parts.append(text[last:])
    open(path, "w").write("".join(out_parts))


if __name__ == "__main__":
    for p in sys.argv[1:]:
        refresh(p)
