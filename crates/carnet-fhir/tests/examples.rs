//! The official R4 examples against `check_resource`.

mod common;

use carnet_fhir::check_resource;
use common::{MAIN_TYPES, all_files, examples_of};

/// Examples of the main types that are invalid per the spec: (file, expression, code, why).
const KNOWN_INVALID: &[(&str, &str, &str, &str)] = &[];

#[test]
fn main_type_examples_pass() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for ty in MAIN_TYPES {
        let examples = examples_of(ty);
        assert!(!examples.is_empty(), "no examples for {ty}");
        for (name, v) in examples {
            checked += 1;
            let known = KNOWN_INVALID.iter().find(|k| k.0 == name);
            match (check_resource(&v), known) {
                (Ok(()), None) => {}
                (Err(issues), Some((_, expr, code, why))) => {
                    assert_eq!(issues.len(), 1, "{name} ({why}): {issues:#?}");
                    assert_eq!(issues[0].expression.as_deref(), Some(*expr), "{name}: {issues:#?}");
                    assert_eq!(issues[0].code, *code, "{name}: {issues:#?}");
                }
                (Ok(()), Some((_, _, _, why))) => {
                    failures.push(format!("{name}: passed, but listed as invalid ({why})"))
                }
                (Err(issues), None) => failures.push(format!("{name}: {issues:#?}")),
            }
        }
    }
    eprintln!(
        "checked {checked} examples of the main types, {} known invalid",
        KNOWN_INVALID.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Examples of other types that are invalid per the spec: (file, what is wrong).
const BROAD_KNOWN_INVALID: &[(&str, &str)] = &[
    ("ImplementationGuide-fhir.json", "no name, no status (both 1..1)"),
    ("ig-r4.json", "no name, no status (both 1..1)"),
    ("Questionnaire-qs1.json", "items without linkId (1..1)"),
    (
        "SearchParameter-codesystem-extensions-CodeSystem-author.json",
        "no base (1..*)",
    ),
    (
        "SearchParameter-codesystem-extensions-CodeSystem-effective.json",
        "no base (1..*)",
    ),
    (
        "SearchParameter-codesystem-extensions-CodeSystem-end.json",
        "no base (1..*)",
    ),
    (
        "SearchParameter-codesystem-extensions-CodeSystem-keyword.json",
        "no base (1..*)",
    ),
    (
        "SearchParameter-codesystem-extensions-CodeSystem-workflow.json",
        "no base (1..*)",
    ),
    (
        "SearchParameter-valueset-extensions-ValueSet-author.json",
        "no base (1..*)",
    ),
    (
        "SearchParameter-valueset-extensions-ValueSet-effective.json",
        "no base (1..*)",
    ),
    (
        "SearchParameter-valueset-extensions-ValueSet-end.json",
        "no base (1..*)",
    ),
    (
        "SearchParameter-valueset-extensions-ValueSet-keyword.json",
        "no base (1..*)",
    ),
    (
        "SearchParameter-valueset-extensions-ValueSet-workflow.json",
        "no base (1..*)",
    ),
    (
        "SearchParameter-questionnaireresponse-extensions-QuestionnaireResponse-item-subject.json",
        "id longer than 64 characters",
    ),
];

/// Every example of every type (bundles, terminology, conformance resources...). Prints
/// the failures; anything failing that is not in `BROAD_KNOWN_INVALID` is a checker bug.
#[test]
fn all_examples_broad_pass() {
    let files = all_files();
    let mut failed = Vec::new();
    for (name, v) in &files {
        if let Err(issues) = check_resource(v) {
            failed.push((name.clone(), issues));
        }
    }
    eprintln!("{} example files checked, {} failed", files.len(), failed.len());
    for (name, issues) in &failed {
        for i in issues.iter().take(3) {
            eprintln!(
                "  {name}: {} {} {}",
                i.code,
                i.expression.as_deref().unwrap_or("-"),
                i.diagnostics
            );
        }
    }
    let mut got: Vec<&str> = failed.iter().map(|(n, _)| n.as_str()).collect();
    let mut want: Vec<&str> = BROAD_KNOWN_INVALID.iter().map(|k| k.0).collect();
    got.sort_unstable();
    want.sort_unstable();
    assert_eq!(got, want);
}
