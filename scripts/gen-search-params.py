#!/usr/bin/env python3
"""Regenerates conformance/search-parameters.json from the official R4 package.

Usage: scripts/gen-search-params.py [PACKAGE_DIR]
PACKAGE_DIR defaults to what scripts/fetch-fhir-packages.sh prints. The output is
deterministic (same input, same bytes) so regenerating never produces noise diffs.
"""
import json
import os
import subprocess
import sys

# Bulky or server-irrelevant elements; everything dropped here is optional in
# SearchParameter, so each entry stays a valid resource that can be served as is.
DROPPED = ("text", "xpath", "contact")


def package_dir():
    if len(sys.argv) > 1:
        return sys.argv[1]
    here = os.path.dirname(os.path.abspath(__file__))
    out = subprocess.run([os.path.join(here, "fetch-fhir-packages.sh")],
                         check=True, capture_output=True, text=True)
    return out.stdout.strip()


def main():
    src = os.path.join(package_dir(), "package", "Bundle-searchParams.json")
    with open(src, encoding="utf-8") as f:
        bundle = json.load(f)
    entries = []
    for entry in bundle["entry"]:
        res = entry["resource"]
        if res.get("resourceType") != "SearchParameter":
            continue
        res = {k: v for k, v in res.items() if k not in DROPPED}
        entries.append({"fullUrl": res["url"], "resource": res})
    out = {
        "resourceType": "Bundle",
        "id": "search-parameters",
        "type": "collection",
        "entry": entries,
    }
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    dest = os.path.join(root, "conformance", "search-parameters.json")
    with open(dest, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"{dest}: {len(entries)} SearchParameter resources")


if __name__ == "__main__":
    main()
