#!/usr/bin/env python3
"""Generates crates/carnet-fhir/data/r4-elements.json from the official R4 package.

Usage: scripts/gen-r4-elements.py [PACKAGE_DIR] [OUTPUT]
  PACKAGE_DIR defaults to "$(scripts/fetch-fhir-packages.sh)/package".

The table keeps only what the structural checker needs, so that it stays small enough
to be compiled into the crate with include_str!:

  {"resources": [sorted concrete resource type names],
   "types": {NAME: {"base": BASE-or-null, "elements": [[json_name, min, repeats, types], ...]}}}

NAME is a resource or complex datatype name, or the full path of a backbone element
("Observation.component"). BASE names a struct ("Resource", "DomainResource", "Element",
"BackboneElement") whose elements are inherited, which avoids repeating them in every
struct. A choice element keeps its "[x]" suffix and lists its types; otherwise `types`
is a single name: a primitive ("date"), a struct name, or "Resource" for any resource.
"""

import glob
import json
import os
import sys

from fhirpkg import package_dir, type_code
BASES = ("Resource", "DomainResource", "Element", "BackboneElement")


def load_definitions(pkg):
    defs = {}
    for path in glob.glob(os.path.join(pkg, "StructureDefinition-*.json")):
        with open(path, encoding="utf-8") as f:
            sd = json.load(f)
        if sd.get("kind") not in ("resource", "complex-type"):
            continue
        if sd.get("derivation") != "specialization" and sd["type"] not in BASES:
            continue
        defs[sd["type"]] = sd
    return defs


def build(defs):
    types = {}
    for name, sd in sorted(defs.items()):
        elements = sd["snapshot"]["element"]
        paths_with_children = set()
        for e in elements:
            parent = e["path"].rsplit(".", 1)[0]
            paths_with_children.add(parent)
        structs = {}
        for e in elements[1:]:
            parent, leaf = e["path"].rsplit(".", 1)
            if "contentReference" in e:
                types_ = e["contentReference"].lstrip("#")
            else:
                codes = [type_code(t) for t in e.get("type", [])]
                if e["path"] in paths_with_children:
                    # Inline backbone element: its children form a struct named by path.
                    types_ = e["path"]
                elif leaf.endswith("[x]"):
                    types_ = codes
                elif len(codes) == 1:
                    types_ = codes[0]
                else:
                    raise SystemExit(f"unexpected multi-typed element {e['path']}")
            # R4 snapshots type Resource.id as string, but the spec's rule is `id`.
            if leaf == "id" and parent == name and sd["kind"] == "resource":
                types_ = "id"
            repeats = 1 if e["max"] != "1" else 0
            if e["max"] == "0":
                continue
            structs.setdefault(parent, []).append([leaf, e["min"], repeats, types_])
        for path, elems in structs.items():
            types[path] = {"elements": elems}
        if name not in types:
            types[name] = {"elements": []}
    return types


def factor_bases(types, defs):
    """Replaces inherited elements by a `base` reference."""
    base_elems = {b: types[b]["elements"] for b in BASES}
    # Order matters: try the most specific base first.
    order = ["DomainResource", "Resource", "BackboneElement", "Element"]
    for name, t in types.items():
        if name in BASES:
            t["base"] = {"DomainResource": "Resource", "BackboneElement": "Element"}.get(name)
            if t["base"]:
                inherited = {e[0] for e in types[t["base"]]["elements"]}
                t["elements"] = [e for e in t["elements"] if e[0] not in inherited]
            continue
        t["base"] = None
        for b in order:
            be = base_elems[b]
            by_name = {e[0]: e for e in t["elements"]}
            if all(n[0] in by_name and same(by_name[n[0]], n) for n in be):
                t["base"] = b
                drop = {n[0] for n in be}
                t["elements"] = [e for e in t["elements"] if e[0] not in drop]
                break


def same(a, b):
    # Resource.id is typed "id" for resources; the base struct says the same.
    return a[1] == b[1] and a[2] == b[2] and (a[3] == b[3] or a[0] == "id")


def main():
    pkg = package_dir(sys.argv[1] if len(sys.argv) > 1 else None)
    out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        "crates", "carnet-fhir", "data", "r4-elements.json")
    defs = load_definitions(pkg)
    types = build(defs)
    factor_bases(types, defs)
    resources = sorted(
        n for n, sd in defs.items()
        if sd["kind"] == "resource" and not sd.get("abstract", False)
    )
    for name, t in types.items():
        if t["base"] is None and name not in ("Element", "Resource"):
            raise SystemExit(f"no base found for {name}")
    # Top-level elements marked isSummary, per resource, for `_summary=true`.
    summary = {
        n: sorted({e["path"].split(".")[1].removesuffix("[x]")
                   for e in defs[n]["snapshot"]["element"][1:]
                   if e["path"].count(".") == 1 and e.get("isSummary")})
        for n in resources
    }
    doc = {"resources": resources, "types": dict(sorted(types.items()))}
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        # One struct per line: compact, yet diffs stay readable.
        f.write('{"resources":' + json.dumps(resources, separators=(",", ":")) + ',\n')
        f.write('"summary":' + json.dumps(summary, separators=(",", ":")) + ',\n"types":{\n')
        items = list(doc["types"].items())
        for i, (name, t) in enumerate(items):
            sep = "," if i + 1 < len(items) else ""
            f.write(json.dumps(name) + ":" + json.dumps(t, separators=(",", ":")) + sep + "\n")
        f.write("}}\n")
    print(f"{len(resources)} resources, {len(types)} structs -> {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
