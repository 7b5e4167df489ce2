#!/usr/bin/env python3
"""Summarises ctest JUnit files (ctest --output-junit): passed / failed / skipped counts and,
for the skipped tests (exit 77), why they skipped, one line per reason (the first line of the
test's output that says skip, without its test-specific prefix). Skips of sub-tests inside a
test that passed are listed the same way. Prints the closing line
"test: N passed, N failed, N skipped" summed over every file given.

usage: test-summary.py LABEL=JUNIT.xml [LABEL=JUNIT.xml ...]
"""
import re
import sys
import xml.etree.ElementTree as ET

SKIP = re.compile(r"\bskip(ped)?\b[: ]", re.I)


def reason_of(text):
    for line in (text or "").splitlines():
        if SKIP.search(line):
            line = line.strip()
            # "SKIP spec test align: WHY", "skip: WHY", "SKIP: WHY"
            return line.split(": ", 1)[1] if ": " in line else line
    return "(no reason printed)"


def shown(names):
    return ", ".join(names[:3]) + (f", ... ({len(names)} tests)" if len(names) > 3 else "")


def main(args):
    total = [0, 0, 0]
    for arg in args:
        label, _, path = arg.partition("=")
        try:
            suite = ET.parse(path).getroot()
        except (OSError, ET.ParseError) as e:
            print(f"test: {label}: no results ({e})")
            total[1] += 1
            continue
        passed, failed, skipped = [], [], {}
        inner = {}
        for tc in suite.iter("testcase"):
            name = tc.get("name")
            out = tc.findtext("system-out") or ""
            if tc.find("failure") is not None or tc.get("status") == "fail":
                failed.append(name)
            elif tc.get("status") == "notrun" or tc.find("skipped") is not None:
                skipped.setdefault(reason_of(out), []).append(name)
            else:
                passed.append(name)
                for line in out.splitlines():
                    if SKIP.search(line) and not re.search(r"\d+ skipped", line):
                        inner.setdefault(reason_of(line), []).append(name)
        nskip = sum(len(v) for v in skipped.values())
        print(f"test: {label}: {len(passed)} passed, {len(failed)} failed, {nskip} skipped")
        for name in failed:
            print(f"  FAILED {name}")
        for why, names in sorted(skipped.items(), key=lambda kv: -len(kv[1])):
            print(f"  skipped because {why}: {shown(names)}")
        for why, names in sorted(inner.items(), key=lambda kv: -len(kv[1])):
            print(f"  parts skipped inside passing tests because {why}: {shown(sorted(set(names)))}")
        total[0] += len(passed)
        total[1] += len(failed)
        total[2] += nskip
    print(f"test: {total[0]} passed, {total[1]} failed, {total[2]} skipped")
    return 1 if total[1] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
