//! Every resource of the official R4 package (examples and conformance resources alike)
//! must pass the base rules without an error. Needs CARNET_FHIR_EXAMPLES (fails without).

mod common;

use std::collections::{BTreeMap, BTreeSet};

use carnet_validate::{Registry, Severity, validate};

/// Examples that are invalid per the spec itself: (file, invariant key or issue code).
const INVALID: &[(&str, &str)] = &[
    // sdf-4 `abstract = true or baseDefinition.exists()`: the spec's pattern logical
    // models are published neither abstract nor with a baseDefinition.
    ("StructureDefinition-Definition.json", "sdf-4"),
    ("StructureDefinition-Event.json", "sdf-4"),
    ("StructureDefinition-FiveWs.json", "sdf-4"),
    ("StructureDefinition-Request.json", "sdf-4"),
    // bdl-7: a collection whose entries repeat fullUrls (de-Quantity.value...) without
    // meta.versionId. (Only evaluated by the complete engine.)
    ("Bundle-dataelements.json", "bdl-7"),
];

/// Failures that come from the interim FHIRPath engine (carnet-fhirpath's search subset,
/// see src/fhirpath.rs), not from the examples: allowed only while that engine is in use,
/// and then each must still fail. With the complete engine (issue6-fhirpath, checked at
/// 96b3aa3) none of them fails; the list can go once the adapter is switched.
const ENGINE_GAPS: &[(&str, &str)] = &[
    // `entry.first().resource.is(Composition)`: nodes below `resource` are not typed by
    // their resourceType, so `is()` answers false.
    ("Bundle-father.json", "bdl-11"),
    ("Bundle-10bb101f-a121-4264-a920-67be9cb82c74.json", "bdl-12"),
    ("Bundle-3a0707d3-549e-4467-b8b8-5a2ab3800efe.json", "bdl-12"),
    // `extension.exists() != value.exists()` on an extension whose value is only
    // `_valueString` (a primitive with extensions and no value): `value` does not see it.
    ("Bundle-v2-valuesets.json", "ext-1"),
    ("CodeSystem-v2-0207.json", "ext-1"),
    ("CodeSystem-v2-0229.json", "ext-1"),
    ("CodeSystem-v2-0241.json", "ext-1"),
    ("CodeSystem-v2-0254.json", "ext-1"),
    ("CodeSystem-v2-0280.json", "ext-1"),
];

#[test]
fn official_examples_pass_base_rules() {
    let registry = Registry::new();
    let files = common::files(|_| true);
    assert!(files.len() > 5000, "only {} files in the package", files.len());
    let mut errors: BTreeSet<(String, String)> = BTreeSet::new();
    let mut details: Vec<String> = Vec::new();
    let mut unsupported: BTreeMap<String, usize> = BTreeMap::new();
    let mut not_evaluated: BTreeSet<(String, String)> = BTreeSet::new();
    let mut warnings: BTreeMap<String, usize> = BTreeMap::new();
    for (name, resource) in &files {
        for issue in validate(&registry, resource, &[]) {
            let key = issue
                .diagnostics
                .split_once(':')
                .map_or(issue.code, |(k, _)| {
                    if matches!(issue.code, "invariant" | "not-supported") {
                        k
                    } else {
                        issue.code
                    }
                })
                .to_owned();
            match issue.severity {
                Severity::Error => {
                    details.push(format!(
                        "{name}: {} {:?} {}",
                        issue.code, issue.expression, issue.diagnostics
                    ));
                    errors.insert((name.clone(), key));
                }
                _ if issue.code == "not-supported" => {
                    not_evaluated.insert((name.clone(), key.clone()));
                    *unsupported.entry(key).or_default() += 1;
                }
                _ => {
                    let what = issue.diagnostics.split(" (").next().unwrap_or_default();
                    *warnings.entry(format!("{} {what}", issue.code)).or_default() += 1;
                }
            }
        }
    }
    println!(
        "{} files; {} warnings; invariants not evaluated (resources): {unsupported:?}",
        files.len(),
        warnings.values().sum::<usize>()
    );
    let mut top: Vec<(&String, &usize)> = warnings.iter().collect();
    top.sort_by(|a, b| b.1.cmp(a.1));
    println!("most frequent warnings: {:#?}", &top[..top.len().min(15)]);
    let complete = carnet_validate::invariant_engine_is_complete();
    let gaps: &[(&str, &str)] = if complete { &[] } else { ENGINE_GAPS };
    let allowed: BTreeSet<(String, String)> = INVALID
        .iter()
        .chain(gaps)
        .map(|(f, k)| ((*f).to_owned(), (*k).to_owned()))
        .collect();
    let unexpected: Vec<&String> = details
        .iter()
        .filter(|d| {
            !allowed
                .iter()
                .any(|(f, k)| d.starts_with(&format!("{f}:")) && d.contains(&format!(" {k}:")))
        })
        .collect();
    assert!(
        unexpected.is_empty(),
        "{} unexpected errors:\n{unexpected:#?}",
        unexpected.len()
    );
    // An allowed entry must still fail, or not be evaluated by the interim engine.
    let stale: Vec<&(String, String)> = allowed
        .iter()
        .filter(|e| !errors.contains(*e) && !not_evaluated.contains(*e))
        .collect();
    assert!(
        stale.is_empty(),
        "allow-list entries that no longer fail (remove them): {stale:?}"
    );
}
