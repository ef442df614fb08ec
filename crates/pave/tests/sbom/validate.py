#!/usr/bin/env python3
"""Validate CycloneDX JSON files offline.

1. JSON-schema validation against the official CycloneDX schema bundled in
   cyclonedx-python-lib (JsonStrictValidator: additionalProperties=false).
   The schema's $refs to spdx.schema.json, jsf-0.82.schema.json (and
   cryptography-defs for 1.6+) are resolved from files shipped in the wheel,
   so no network access is needed.
2. Checks the schema does NOT do: every purl parses (packageurl-python, a
   dependency of cyclonedx-python-lib), bom-refs are unique, and every
   dependencies[].ref / dependsOn[] names an existing bom-ref.

usage: validate_cdx.py [--spec 1.4|1.5|1.6] FILE...
exit 0 if all valid, 1 if any invalid, 2 on usage error.
"""
import json
import sys

from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from packageurl import PackageURL


def extra_checks(bom):
    problems = []
    refs = []

    def walk(components):
        for c in components or []:
            if "bom-ref" in c:
                refs.append(c["bom-ref"])
            if "purl" in c:
                try:
                    PackageURL.from_string(c["purl"])
                except ValueError as e:
                    problems.append(f"bad purl {c['purl']!r}: {e}")
            walk(c.get("components"))

    meta = bom.get("metadata", {}).get("component")
    if meta:
        walk([meta])
    walk(bom.get("components"))
    dupes = sorted({r for r in refs if refs.count(r) > 1})
    if dupes:
        problems.append(f"duplicate bom-ref(s): {dupes}")
    known = set(refs)
    for d in bom.get("dependencies", []) or []:
        for r in [d.get("ref")] + list(d.get("dependsOn", []) or []):
            if r not in known:
                problems.append(f"dependency ref {r!r} matches no bom-ref")
    return problems


def main(argv):
    spec = "1.5"
    if argv[:1] == ["--spec"]:
        spec, argv = argv[1], argv[2:]
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    version = {"1.4": SchemaVersion.V1_4, "1.5": SchemaVersion.V1_5,
               "1.6": SchemaVersion.V1_6}[spec]
    validator = JsonStrictValidator(version)
    bad = 0
    for path in argv:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        err = validator.validate_str(text)
        if err is not None:
            inner = getattr(err, "data", None)
            msg = getattr(inner, "message", None) or str(err).splitlines()[0]
            where = "/".join(str(p) for p in getattr(inner, "absolute_path", []))
            bad += 1
            print(f"INVALID {path}: schema: {msg} (at /{where})")
            continue
        problems = extra_checks(json.loads(text))
        if problems:
            bad += 1
            for p in problems:
                print(f"INVALID {path}: {p}")
            continue
        print(f"VALID   {path} (CycloneDX {spec}, strict)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
