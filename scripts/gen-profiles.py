#!/usr/bin/env python3
"""Generates Carnet's profiles (profiles/StructureDefinition-*.json) from their
differentials (profiles/src/StructureDefinition-*.json) and checks the whole folder.

Usage: scripts/gen-profiles.py [--check | --self-test] [PACKAGE_DIR]
  PACKAGE_DIR: the unpacked hl7.fhir.r4.examples 4.0.1 `package` folder; defaults to
  $CARNET_FHIR_EXAMPLES, else "$(scripts/fetch-fhir-packages.sh)/package".
  --check: write nothing; exit 1 if a generated file differs from what is committed.
  --self-test: write nothing; regenerate the snapshots of the profiles HL7 ships in the
  package (those derived from a core resource) from their differentials and compare
  them with HL7's own snapshots; a profile that uses a feature this generator does not
  support (extension slices, slices of choice types by type) is skipped
  with the reason; any other difference fails.

The snapshot is built the way the FHIR snapshot generator does it, restricted to what
Carnet's differentials use (no extensions defined here, no re-slicing, no profiles on
data types):
  - start from a copy of the base resource's snapshot;
  - walk the differential in order; an element that is not yet in the snapshot is made:
    children of a complex type are unrolled from that type's StructureDefinition (paths
    and ids re-rooted, `base` kept as the type's own), children of a backbone element or
    a `contentReference` from the base resource, and a slice is a copy of the sliced
    element placed after the sliced element's children and earlier slices;
  - the differential's properties then replace the snapshot's, except `constraint` and
    `condition`, which are added to (a new constraint gets `source` = the profile's url).
Every element keeps a `base`. The checks that fail the run: a differential id whose path
does not exist, a type or target profile the base does not allow, a slice without
slicing on its element or without an explicit min and max, duplicate slice names,
min > max or a cardinality wider than the base, a fixed/pattern value whose type is not
the element's, a binding to a value set found neither in the R4 package nor in profiles/,
a duplicated constraint key, an example without a known meta.profile, and an
invalid/expected.json that does not match the files next to it.

Output is deterministic: same inputs, same bytes (json.dumps with a fixed layout).
"""

import copy
import glob
import html
import json
import os
import re
import sys

from fhirpkg import package_dir

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROFILES = os.path.join(ROOT, "profiles")
SRC = os.path.join(PROFILES, "src")
CANONICAL = "https://carnet.dev/fhir"
CORE = "http://hl7.org/fhir/StructureDefinition/"
PRIMITIVES = {
    "base64Binary", "boolean", "canonical", "code", "date", "dateTime", "decimal", "id",
    "instant", "integer", "markdown", "oid", "positiveInt", "string", "time",
    "unsignedInt", "uri", "url", "uuid", "xhtml",
}
DISCRIMINATORS = {"value", "pattern"}
ISSUE_CODES = {"invariant", "required", "structure", "value", "code-invalid"}


class Failure(Exception):
    pass


def fail(msg):
    raise Failure(msg)


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def dumps(value):
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


class Package:
    def __init__(self, pkg):
        self.dir = pkg
        self.sds = {}
        self.valuesets = set()
        self.codesystems = {}
        for path in glob.glob(os.path.join(pkg, "ValueSet-*.json")):
            self.valuesets.add(load(path)["url"])
        for path in glob.glob(os.path.join(pkg, "CodeSystem-*.json")):
            cs = load(path)
            self.codesystems[cs["url"]] = cs

    def sd(self, name):
        if name not in self.sds:
            path = os.path.join(self.dir, f"StructureDefinition-{name}.json")
            if not os.path.exists(path):
                fail(f"no StructureDefinition for type {name} in {self.dir}")
            self.sds[name] = load(path)
        return self.sds[name]


def split_id(eid):
    """'Observation.category:laboratory.coding' -> [('Observation', None),
    ('category', 'laboratory'), ('coding', None)]."""
    out = []
    for seg in eid.split("."):
        name, _, slice_name = seg.partition(":")
        out.append((name, slice_name or None))
    return out


def id_path(eid):
    return ".".join(name for name, _ in split_id(eid))


def type_codes(el):
    return [t["code"] for t in el.get("type", [])]


def card_max(m):
    return float("inf") if m == "*" else int(m)


class Snapshot:
    def __init__(self, pkg, base_sd, url):
        self.pkg = pkg
        self.base = base_sd["snapshot"]["element"]
        self.elements = copy.deepcopy(self.base)
        self.url = url
        self.slice_names = {}

    def derives_from(self, url, allowed):
        """Whether the profile `url` is one of `allowed` or constrains one of them."""
        seen = set()
        while url not in allowed:
            if url in seen or not url.startswith(CORE):
                return False
            seen.add(url)
            try:
                url = self.pkg.sd(url[len(CORE):]).get("baseDefinition", "")
            except Failure:
                return False
        return True

    def index(self, eid):
        for i, el in enumerate(self.elements):
            if el["id"] == eid:
                return i
        return None

    def end_of(self, eid):
        """Index after `eid`, its descendants and its slices (with theirs)."""
        i = self.index(eid)
        j = i + 1
        while j < len(self.elements):
            other = self.elements[j]["id"]
            if other.startswith(eid + ".") or other.startswith(eid + ":"):
                j += 1
            else:
                break
        return j

    def children_of(self, parent):
        """Element definitions (copies, re-rooted) for the children of `parent`."""
        pid, ppath = parent["id"], parent["path"]
        source_path = None
        if "contentReference" in parent:
            source_path = parent["contentReference"].lstrip("#")
        elif any(e["path"].startswith(ppath + ".") for e in self.base):
            source_path = ppath
        if source_path is not None:
            out = []
            for e in self.base:
                if e["path"].startswith(source_path + "."):
                    c = copy.deepcopy(e)
                    rest = e["path"][len(source_path):]
                    c["path"] = ppath + rest
                    c["id"] = pid + e["id"][len(source_path):]
                    out.append(c)
            return out
        codes = type_codes(parent)
        if len(codes) != 1:
            fail(f"{pid}: cannot step into an element of types {codes} (constrain it to one type first)")
        tname = codes[0]
        if tname.startswith("http://hl7.org/fhirpath/"):
            fail(f"{pid}: a system primitive has no children")
        tsd = self.pkg.sd(tname)
        out = []
        for e in tsd["snapshot"]["element"][1:]:
            c = copy.deepcopy(e)
            c["path"] = ppath + e["path"][len(tname):]
            c["id"] = pid + e["id"][len(tname):]
            out.append(c)
        return out

    def ensure(self, eid):
        i = self.index(eid)
        if i is not None:
            return i
        segs = split_id(eid)
        if len(segs) == 1:
            fail(f"{eid}: not the profiled resource's root")
        name, slice_name = segs[-1]
        if slice_name is not None:
            sliced_id = eid[: -(len(slice_name) + 1)]
            si = self.ensure(sliced_id)
            sliced = self.elements[si]
            if "slicing" not in sliced:
                fail(f"{eid}: slice of {sliced_id}, which has no slicing")
            names = self.slice_names.setdefault(sliced_id, [])
            if slice_name in names:
                fail(f"{eid}: slice name used twice")
            names.append(slice_name)
            el = copy.deepcopy(sliced)
            el.pop("slicing", None)
            el["id"] = eid
            el["sliceName"] = slice_name
            at = self.end_of(sliced_id)
            self.elements.insert(at, el)
            return at
        parent_id = ".".join(
            n + (":" + s if s else "") for n, s in segs[:-1]
        )
        pi = self.ensure(parent_id)
        parent = self.elements[pi]
        has_children = any(
            e["id"].startswith(parent_id + ".") for e in self.elements
        )
        if not has_children:
            kids = self.children_of(parent)
            self.elements[pi + 1:pi + 1] = kids
        i = self.index(eid)
        if i is None:
            fail(f"{eid}: no such element in the base ({parent['path']} has no child {name})")
        return i

    def apply(self, d, known_valuesets):
        eid = d["id"]
        if d.get("path") != id_path(eid):
            fail(f"{eid}: path {d.get('path')!r} does not match its id")
        el = self.elements[self.ensure(eid)]
        segs = split_id(eid)
        if segs[-1][1] is not None:
            if d.get("sliceName") != segs[-1][1]:
                fail(f"{eid}: sliceName must be {segs[-1][1]!r}")
            if "min" not in d or "max" not in d:
                fail(f"{eid}: a slice states its min and max")
        for k, v in d.items():
            if k in ("id", "path", "sliceName"):
                continue
            if k == "constraint":
                have = {c["key"] for c in el.get("constraint", [])}
                for c in v:
                    for field in ("key", "severity", "human", "expression"):
                        if field not in c:
                            fail(f"{eid}: constraint without {field}")
                    if c["key"] in have:
                        fail(f"{eid}: constraint key {c['key']} already used")
                    c2 = dict(c)
                    c2.setdefault("source", self.url)
                    el.setdefault("constraint", []).append(c2)
            elif k == "condition":
                el.setdefault("condition", []).extend(x for x in v if x not in el.get("condition", []))
            elif k == "type":
                allowed = {t["code"]: t for t in el.get("type", [])}
                for t in v:
                    if t["code"] not in allowed:
                        fail(f"{eid}: type {t['code']} not allowed by the base ({sorted(allowed)})")
                    base_targets = allowed[t["code"]].get("targetProfile")
                    for tp in t.get("targetProfile", []):
                        if base_targets is not None and not self.derives_from(tp, base_targets):
                            fail(f"{eid}: target {tp} not allowed by the base")
                el["type"] = copy.deepcopy(v)
            elif k.startswith("fixed") or k.startswith("pattern"):
                suffix = k[5:] if k.startswith("fixed") else k[7:]
                tname = suffix if suffix[0].lower() + suffix[1:] not in PRIMITIVES else suffix[0].lower() + suffix[1:]
                if tname not in type_codes(el):
                    fail(f"{eid}: {k} does not fit types {type_codes(el)}")
                for other in [x for x in el if x.startswith("fixed") or x.startswith("pattern")]:
                    del el[other]
                el[k] = copy.deepcopy(v)
            elif k == "binding":
                vs = v.get("valueSet", "").split("|")[0]
                if vs not in known_valuesets:
                    fail(f"{eid}: binding to unknown value set {vs}")
                if v.get("strength") not in ("required", "extensible", "preferred", "example"):
                    fail(f"{eid}: binding strength {v.get('strength')}")
                el["binding"] = copy.deepcopy(v)
            elif k == "slicing":
                for disc in v.get("discriminator", []):
                    if disc.get("type") not in DISCRIMINATORS:
                        fail(f"{eid}: discriminator {disc.get('type')} (Carnet slices by value or pattern)")
                if v.get("rules") not in ("open", "closed", "openAtEnd"):
                    fail(f"{eid}: slicing rules")
                el["slicing"] = copy.deepcopy(v)
            elif k == "min":
                base_min = el["min"] if segs[-1][1] is None else 0
                if v < base_min:
                    fail(f"{eid}: min {v} below the base's {base_min}")
                el["min"] = v
            elif k == "max":
                if card_max(v) > card_max(el["max"]):
                    fail(f"{eid}: max {v} above the base's {el['max']}")
                el["max"] = v
            else:
                el[k] = copy.deepcopy(v)
        if card_max(el["max"]) < el["min"]:
            fail(f"{eid}: min {el['min']} > max {el['max']}")
        if segs[-1][1] is not None and "max" in d:
            sliced = self.elements[self.index(eid[: -(len(segs[-1][1]) + 1)])]
            if card_max(d["max"]) > card_max(sliced["max"]):
                fail(f"{eid}: slice max above the sliced element's")


def narrative(text):
    return {
        "status": "generated",
        "div": f'<div xmlns="http://www.w3.org/1999/xhtml"><p>{html.escape(text, quote=False)}</p></div>',
    }


def generate(pkg, src, known_valuesets):
    for field in ("url", "name", "type", "baseDefinition", "differential", "version", "description"):
        if field not in src:
            fail(f"{src.get('id')}: {field} missing")
    if src["url"] != f"{CANONICAL}/StructureDefinition/{src['id']}":
        fail(f"{src['id']}: url must be {CANONICAL}/StructureDefinition/{src['id']}")
    if src["baseDefinition"] != CORE + src["type"]:
        fail(f"{src['id']}: Carnet profiles derive from the core resource")
    base = pkg.sd(src["type"])
    snap = Snapshot(pkg, base, src["url"])
    for d in src["differential"]["element"]:
        snap.apply(d, known_valuesets)
    out = {}
    head = ["resourceType", "id", "text", "url", "version", "name", "title", "status",
            "date", "publisher", "description", "purpose", "fhirVersion", "kind",
            "abstract", "type", "baseDefinition", "derivation"]
    full = dict(src)
    full.setdefault("text", narrative(src["description"]))
    full["status"] = "active"
    full["publisher"] = "Carnet"
    full["fhirVersion"] = "4.0.1"
    full["kind"] = "resource"
    full["abstract"] = False
    full["derivation"] = "constraint"
    for k in head:
        if k in full:
            out[k] = full[k]
    for k in full:
        if k not in out and k != "differential":
            out[k] = full[k]
    out["snapshot"] = {"element": snap.elements}
    out["differential"] = src["differential"]
    return out


def check_terminology(pkg):
    """Local ValueSets/CodeSystems: canonical urls, and every code they include exists."""
    local_vs, local_cs = {}, {}
    for path in sorted(glob.glob(os.path.join(PROFILES, "CodeSystem-*.json"))):
        cs = load(path)
        if os.path.basename(path) != f"CodeSystem-{cs['id']}.json":
            fail(f"{path}: file name does not match id")
        if not cs["url"].startswith(f"{CANONICAL}/CodeSystem/"):
            fail(f"{path}: url outside {CANONICAL}/CodeSystem/")
        if cs.get("count") is not None and cs["count"] != len(cs.get("concept", [])):
            fail(f"{path}: count does not match the concepts")
        local_cs[cs["url"]] = cs
    for path in sorted(glob.glob(os.path.join(PROFILES, "ValueSet-*.json"))):
        vs = load(path)
        if os.path.basename(path) != f"ValueSet-{vs['id']}.json":
            fail(f"{path}: file name does not match id")
        if not vs["url"].startswith(f"{CANONICAL}/ValueSet/"):
            fail(f"{path}: url outside {CANONICAL}/ValueSet/")
        for inc in vs.get("compose", {}).get("include", []):
            system = inc.get("system")
            cs = local_cs.get(system) or pkg.codesystems.get(system)
            if cs is None or cs.get("content") == "not-present":
                # LOINC and the other external systems are not in the package: their
                # codes cannot be checked here.
                continue
            codes = set()

            def walk(concepts):
                for c in concepts:
                    codes.add(c["code"])
                    walk(c.get("concept", []))

            walk(cs.get("concept", []))
            for c in inc.get("concept", []):
                if c["code"] not in codes:
                    fail(f"{path}: code {system}|{c['code']} does not exist")
        local_vs[vs["url"]] = vs
    return local_vs, local_cs


def check_examples(profile_urls):
    count = 0
    for path in sorted(glob.glob(os.path.join(PROFILES, "examples", "*.json"))):
        res = load(path)
        profiles = res.get("meta", {}).get("profile", [])
        if not profiles or any(p not in profile_urls for p in profiles):
            fail(f"{path}: meta.profile {profiles} names no Carnet profile")
        if profile_urls[profiles[0]] != res["resourceType"]:
            fail(f"{path}: a {res['resourceType']} under a {profile_urls[profiles[0]]} profile")
        count += 1
    covered = set()
    for path in glob.glob(os.path.join(PROFILES, "examples", "*.json")):
        covered.update(load(path)["meta"]["profile"])
    missing = set(profile_urls) - covered
    if missing:
        fail(f"profiles without an example: {sorted(missing)}")
    inv_dir = os.path.join(PROFILES, "invalid")
    expected = load(os.path.join(inv_dir, "expected.json"))
    files = {os.path.basename(p) for p in glob.glob(os.path.join(inv_dir, "*.json"))} - {"expected.json"}
    if set(expected) != files:
        fail(f"invalid/expected.json and the files differ: {sorted(set(expected) ^ files)}")
    for name, issue in sorted(expected.items()):
        res = load(os.path.join(inv_dir, name))
        for one in [issue] + issue.get("also", []):
            if one.get("severity") not in ("error", "warning"):
                fail(f"invalid/{name}: severity")
            if one.get("code") not in ISSUE_CODES:
                fail(f"invalid/{name}: code {one.get('code')}")
            if not one.get("expression", "").startswith(res["resourceType"]):
                fail(f"invalid/{name}: expression must start at {res['resourceType']}")
        if issue.get("profile") not in profile_urls:
            fail(f"invalid/{name}: profile {issue.get('profile')} unknown")
        if res.get("meta", {}).get("profile") != [issue["profile"]]:
            fail(f"invalid/{name}: meta.profile must be [{issue['profile']}]")
    return count, len(expected)


SELF_TEST_PROPS = ("min", "max", "sliceName", "slicing", "base", "type", "binding", "constraint")


def comparable(el):
    out = {p: el.get(p) for p in SELF_TEST_PROPS}
    out["type"] = [(t["code"], t.get("targetProfile"), t.get("profile")) for t in el.get("type", [])]
    b = el.get("binding", {})
    out["binding"] = (b.get("strength"), b.get("valueSet"))
    out["constraint"] = sorted(c["key"] for c in el.get("constraint", []))
    out["fixed/pattern"] = {k: v for k, v in el.items() if k.startswith("fixed") or k.startswith("pattern")}
    return out


def self_test(pkg):
    checked, skipped, failed = 0, 0, 0
    for path in sorted(glob.glob(os.path.join(pkg.dir, "StructureDefinition-*.json"))):
        sd = load(path)
        if sd.get("derivation") != "constraint" or sd.get("kind") != "resource":
            continue
        if sd["baseDefinition"] != CORE + sd["type"]:
            continue
        snap = Snapshot(pkg, pkg.sd(sd["type"]), sd["url"])
        try:
            for d in sd["differential"]["element"]:
                snap.apply(d, pkg.valuesets)
        except Failure as e:
            skipped += 1
            print(f"  skipped {sd['id']}: {e}")
            continue
        checked += 1
        mine = [(e["id"], comparable(e)) for e in snap.elements]
        theirs = [(e["id"], comparable(e)) for e in sd["snapshot"]["element"]]
        if mine != theirs:
            failed += 1
            ids_m, ids_t = [i for i, _ in mine], [i for i, _ in theirs]
            if ids_m != ids_t:
                print(f"  DIFFERS {sd['id']}: element ids/order differ")
            for (i, a), (_, b) in zip(mine, theirs):
                for k in a:
                    if a[k] != b[k]:
                        print(f"  DIFFERS {sd['id']} {i}.{k}: generated {a[k]} HL7 {b[k]}")
        else:
            print(f"  same as HL7: {sd['id']} ({len(theirs)} elements)")
    print(f"self-test: {checked} HL7 profiles regenerated, {failed} differ, {skipped} skipped")
    return failed == 0 and checked > 0


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    check_only = "--check" in sys.argv[1:]
    pkg = Package(package_dir(args[0] if args else None))
    if "--self-test" in sys.argv[1:]:
        sys.exit(0 if self_test(pkg) else 1)
    local_vs, _ = check_terminology(pkg)
    known_valuesets = pkg.valuesets | set(local_vs)
    profile_urls = {}
    outputs = {}
    for path in sorted(glob.glob(os.path.join(SRC, "StructureDefinition-*.json"))):
        src = load(path)
        if os.path.basename(path) != f"StructureDefinition-{src['id']}.json":
            fail(f"{path}: file name does not match id")
        sd = generate(pkg, src, known_valuesets)
        profile_urls[sd["url"]] = sd["type"]
        outputs[os.path.join(PROFILES, os.path.basename(path))] = dumps(sd)
    stale = [
        p for p in glob.glob(os.path.join(PROFILES, "StructureDefinition-*.json"))
        if p not in outputs
    ]
    if stale:
        fail(f"generated files without a source: {stale}")
    examples, invalid = check_examples(profile_urls)
    differ = []
    for path, text in sorted(outputs.items()):
        current = open(path, encoding="utf-8").read() if os.path.exists(path) else None
        if current != text:
            differ.append(os.path.relpath(path, ROOT))
            if not check_only:
                with open(path, "w", encoding="utf-8") as f:
                    f.write(text)
    print(
        f"{len(outputs)} profiles, {len(local_vs)} local value sets, {examples} examples, "
        f"{invalid} invalid examples; {'differ' if check_only else 'rewritten'}: {differ or 'none'}"
    )
    if check_only and differ:
        sys.exit(1)


if __name__ == "__main__":
    try:
        main()
    except Failure as e:
        print(f"gen-profiles: {e}", file=sys.stderr)
        sys.exit(1)
