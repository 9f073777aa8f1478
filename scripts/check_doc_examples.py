#!/usr/bin/env python3
"""Checks that every code block in docs/ marked `<!-- example: PATH -->` shows PATH exactly as it
is in the repository, so the examples the docs show are the ones the build compiles and the tests
run. Usage: scripts/check_doc_examples.py [REPO_ROOT] [--fix] (--fix pastes the files in again)"""
import pathlib
import re
import sys

MARK = re.compile(r"<!-- example: (\S+) -->\n```[a-z+]*\n(.*?)\n```", re.S)


def main() -> int:
    args = [a for a in sys.argv[1:] if a != "--fix"]
    fix = "--fix" in sys.argv[1:]
    root = pathlib.Path(args[0] if args else ".").resolve()
    bad, checked = 0, 0
    for doc in sorted((root / "docs").glob("*.md")) + [root / "README.md"]:
        text = doc.read_text()
        if fix:
            text = MARK.sub(lambda m: m.group(0).replace(m.group(2), (root / m.group(1)).read_text().rstrip("\n"), 1)
                            if (root / m.group(1)).exists() else m.group(0), text)
            doc.write_text(text)
        for m in MARK.finditer(text):
            checked += 1
            path = root / m.group(1)
            if not path.exists():
                print(f"{doc.relative_to(root)}: shows {m.group(1)}, which does not exist")
                bad += 1
            elif path.read_text().rstrip("\n") != m.group(2).rstrip("\n"):
                print(f"{doc.relative_to(root)}: its copy of {m.group(1)} differs from the file; paste the file again")
                bad += 1
    print(f"{checked} doc example(s) checked, {bad} out of date")
    return 1 if bad or checked == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
