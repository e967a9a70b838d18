#!/usr/bin/env python3
"""Generates crates/carnet-validate/data/r4-rules.json from the official R4 package.

Usage: scripts/gen-r4-rules.py [PACKAGE_DIR] [OUTPUT]
  PACKAGE_DIR defaults to "$(scripts/fetch-fhir-packages.sh)/package".

The validator's base pass needs, and only needs:

  {"constraints": [[key, severity, human, expression], ...],
   "baseKeys": [every constraint key of the base definitions, for profiles to skip],
   "structs": {NAME: {"focus": TYPE (NAME, or the resource type), "c": [constraint index, ...],
                      "e": [[json_name, types, binding, [constraint index, ...]], ...]}},
   "codeSystems": [compact CodeSystem], "valueSets": [compact ValueSet]}

NAME is a resource or datatype name (including the Quantity profiles such as
SimpleQuantity that elements name) or a backbone element's path ("Observation.component").
"c" are the invariants evaluated with the struct as focus. An element's `types` is a
string (a struct name, "Resource" for any resource, or "code"/"Coding"... ) or, for a
choice element (json_name without "[x]"), a list of type names. Elements that lead to no
check (primitives with neither binding nor invariant) are left out, so the walker never
descends into them. `binding` is null or ["required"|"extensible", value set URL], kept
only when the value set can be enumerated from the package's CodeSystems and ValueSets.

ele-1 (every element has a value or children) is left out: carnet-fhir's structural check
already rejects empty objects, and evaluating it on every element would double the cost.
"""

import glob
import json
import os
import sys

from fhirpkg import package_dir, type_code
SD_BASE = "http://hl7.org/fhir/StructureDefinition/"
SKIPPED_KEYS = {"ele-1"}
CODED = {"code", "Coding", "CodeableConcept"}


def load(pkg, prefix):
    out = []
    for path in sorted(glob.glob(os.path.join(pkg, prefix + "-*.json"))):
        with open(path, encoding="utf-8") as f:
            out.append(json.load(f))
    return out


# --- terminology: which value sets can be enumerated (mirrors src/terminology.rs) ---

def compact_concepts(concepts):
    out = []
    for c in concepts:
        o = {"code": c["code"]}
        if "display" in c:
            o["display"] = c["display"]
        if "concept" in c:
            o["concept"] = compact_concepts(c["concept"])
        out.append(o)
    return out


def compact_cs(cs):
    o = {k: cs[k] for k in ("resourceType", "id", "url", "version", "name", "title", "status",
                            "content", "caseSensitive", "hierarchyMeaning") if k in cs}
    if "concept" in cs:
        o["concept"] = compact_concepts(cs["concept"])
    return o


def compact_vs(vs):
    o = {k: vs[k] for k in ("resourceType", "id", "url", "version", "name", "title", "status") if k in vs}
    if "compose" in vs:
        compose = vs["compose"]
        o["compose"] = {k: compose[k] for k in ("include", "exclude", "inactive") if k in compose}
    return o


class Terminology:
    def __init__(self, css, vss):
        self.cs = {c["url"]: c for c in css}
        self.vs = {v["url"]: v for v in vss}
        self.memo = {}

    def expandable(self, url, stack=()):
        url = url.split("|")[0]
        if url in self.memo:
            return self.memo[url]
        if url in stack or url not in self.vs:
            return False
        compose = self.vs[url].get("compose")
        ok = compose is not None and all(
            self.part_ok(p, stack + (url,))
            for p in compose.get("include", []) + compose.get("exclude", []))
        self.memo[url] = ok
        return ok

    def part_ok(self, part, stack):
        if not all(self.expandable(v, stack) for v in part.get("valueSet", [])):
            return False
        system = part.get("system")
        if system is None:
            return bool(part.get("valueSet"))
        if part.get("concept"):
            return not part.get("filter")
        cs = self.cs.get(system)
        if cs is None or cs.get("content") != "complete":
            return False
        return all(f.get("property") == "concept" and f.get("op") in ("is-a", "descendent-of")
                   for f in part.get("filter", []))


# --- structures ---

class Builder:
    def __init__(self, terminology):
        self.term = terminology
        self.constraints = []
        self.index = {}
        self.base_keys = set()
        self.structs = {}

    def constraint(self, c):
        self.base_keys.add(c["key"])
        if c["key"] in SKIPPED_KEYS or "expression" not in c:
            return None
        item = [c["key"], c["severity"], c.get("human", ""), c["expression"]]
        k = json.dumps(item)
        if k not in self.index:
            self.index[k] = len(self.constraints)
            self.constraints.append(item)
        return self.index[k]

    def constraints_of(self, e, own_url, root):
        out = []
        for c in e.get("constraint", []):
            self.base_keys.add(c["key"])
            # Snapshots repeat inherited invariants on every element; below the root only
            # the definition's own are kept (the datatype's struct carries the rest).
            if not root and c.get("source", own_url) != own_url:
                continue
            i = self.constraint(c)
            if i is not None and i not in out:
                out.append(i)
        return out

    def element_types(self, e, backbone_paths):
        if "contentReference" in e:
            return e["contentReference"].lstrip("#")
        if e["path"] in backbone_paths:
            return e["path"]
        codes = []
        for t in e.get("type", []):
            code = type_code(t)
            profiles = t.get("profile", [])
            # A choice's JSON key names the base type (valueQuantity), so only single-typed
            # elements take the profile's struct.
            if (code == "Quantity" and profiles and profiles[0].startswith(SD_BASE)
                    and not e["path"].endswith("[x]")):
                code = profiles[0][len(SD_BASE):]
            codes.append(code)
        if e["path"].endswith("[x]"):
            return codes
        if len(codes) != 1:
            raise SystemExit(f"unexpected multi-typed element {e['path']}")
        return codes[0]

    def binding(self, e, types):
        b = e.get("binding")
        if not b or b.get("strength") not in ("required", "extensible") or "valueSet" not in b:
            return None
        if not isinstance(types, str) or types not in CODED:
            return None
        url = b["valueSet"].split("|")[0]
        if not self.term.expandable(url):
            return None
        return [b["strength"], url]

    def add_definition(self, sd, primitives, name=None, elements_of=None):
        name = name or sd["type"]
        url = sd["url"]
        elements = sd["snapshot"]["element"]
        root = elements[0]
        focus = name if sd["kind"] != "resource" else sd["type"]
        self.structs[name] = {"focus": focus, "c": self.constraints_of(root, url, True), "e": []}
        if elements_of is not None:
            # A Quantity profile: same elements as Quantity, its own root invariants.
            self.structs[name]["e"] = elements_of
            return
        backbone_paths = {e["path"].rsplit(".", 1)[0] for e in elements[1:]}
        for e in elements[1:]:
            if e["max"] == "0":
                continue
            parent, leaf = e["path"].rsplit(".", 1)
            types = self.element_types(e, backbone_paths)
            cons = self.constraints_of(e, url, False)
            if e["path"] in backbone_paths:
                self.structs[e["path"]] = {"focus": e["path"], "c": cons, "e": []}
                cons = []
            binding = self.binding(e, types)
            json_name = leaf[:-3] if leaf.endswith("[x]") else leaf
            if isinstance(types, list):
                useful = any(t not in primitives for t in types)
            else:
                useful = types not in primitives or binding is not None or cons
            if not useful:
                continue
            self.structs.setdefault(parent, {"focus": parent, "c": [], "e": []})
            self.structs[parent]["e"].append([json_name, types, binding, cons])


def main():
    pkg = package_dir(sys.argv[1] if len(sys.argv) > 1 else None)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(
        root, "crates", "carnet-validate", "data", "r4-rules.json")
    sds = load(pkg, "StructureDefinition")
    css = [compact_cs(c) for c in load(pkg, "CodeSystem")]
    vss = [compact_vs(v) for v in load(pkg, "ValueSet")]
    b = Builder(Terminology(css, vss))
    primitives = {sd["type"] for sd in sds if sd["kind"] == "primitive-type"} | {"xhtml"}
    core = [sd for sd in sds if sd["url"] == SD_BASE + sd["id"] and "snapshot" in sd]
    for sd in core:
        if sd["kind"] in ("resource", "complex-type") and sd.get("derivation") == "specialization":
            b.add_definition(sd, primitives)
        elif sd["kind"] == "resource" and sd["type"] in ("Resource",):
            b.add_definition(sd, primitives)
    for sd in core:
        if sd["kind"] == "complex-type" and sd.get("derivation") == "constraint" and sd["type"] == "Quantity":
            b.add_definition(sd, primitives, name=sd["id"], elements_of=b.structs["Quantity"]["e"])
    missing = set()
    for s in b.structs.values():
        for e in s["e"]:
            for t in e[1] if isinstance(e[1], list) else [e[1]]:
                if t not in b.structs and t not in primitives and t != "Resource":
                    missing.add(t)
    if missing:
        print(f"types without struct (not walked): {sorted(missing)}", file=sys.stderr)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    sep = (",", ":")
    with open(out, "w", encoding="utf-8") as f:
        # One item per line: compact, yet diffs stay readable.
        f.write('{"constraints":[\n')
        f.write(",\n".join(json.dumps(c, separators=sep, ensure_ascii=False) for c in b.constraints))
        f.write('],\n"baseKeys":' + json.dumps(sorted(b.base_keys), separators=sep) + ',\n"structs":{\n')
        f.write(",\n".join(json.dumps(n) + ":" + json.dumps(s, separators=sep)
                           for n, s in sorted(b.structs.items())))
        f.write('},\n"codeSystems":[\n')
        f.write(",\n".join(json.dumps(c, separators=sep, ensure_ascii=False) for c in css))
        f.write('],\n"valueSets":[\n')
        f.write(",\n".join(json.dumps(v, separators=sep, ensure_ascii=False) for v in vss))
        f.write("]}\n")
    bound = sum(1 for s in b.structs.values() for e in s["e"] if e[2])
    print(f"{len(b.structs)} structs, {len(b.constraints)} invariants, {bound} bindings, "
          f"{len(css)} code systems, {len(vss)} value sets -> {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
