"""What the generator scripts share: where the official R4 package is, and the FHIR type
code of an ElementDefinition type (FHIRPath System types carry the FHIR one in an
extension)."""

import os
import subprocess

FHIR_TYPE_EXT = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def package_dir(given=None):
    """The unpacked `package/` folder: `given`, else $CARNET_FHIR_EXAMPLES, else the one
    scripts/fetch-fhir-packages.sh fetches (or finds in its cache)."""
    if given:
        return given
    env = os.environ.get("CARNET_FHIR_EXAMPLES")
    if env:
        return env
    out = subprocess.run(
        [os.path.join(ROOT, "scripts", "fetch-fhir-packages.sh")],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    return os.path.join(out, "package")


def type_code(t):
    code = t["code"]
    if code.startswith("http://hl7.org/fhirpath/System."):
        for ext in t.get("extension", []):
            if ext.get("url") == FHIR_TYPE_EXT:
                return ext["valueUrl"]
        raise SystemExit(f"system type without fhir-type extension: {t}")
    return code
