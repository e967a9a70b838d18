//! Semantics, table-driven; many cases adapted from HL7's FHIRPath test suite
//! (fhir-test-cases, r4/fhirpath/tests-fhir-r4.xml), rewritten here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};

use super::{Focus, Invariant};

fn patient() -> Value {
    serde_json::from_str(include_str!("../../tests/fixtures/Patient-example.json")).unwrap()
}

fn observation() -> Value {
    serde_json::from_str(include_str!("../../tests/fixtures/Observation-example.json")).unwrap()
}

fn focus<'a>(res: &'a Value) -> Focus<'a> {
    Focus {
        root: res,
        resource: res,
        value: res,
        primitive_ext: None,
        type_name: res["resourceType"].as_str().unwrap_or("Element"),
    }
}

/// The result as strings; `Err` text on an evaluation error.
fn run(expr: &str, res: &Value) -> Result<Vec<String>, String> {
    let inv = Invariant::compile(expr).map_err(|e| format!("parse: {e}"))?;
    inv.evaluate_strings(&focus(res)).map_err(|e| e.message)
}

fn check_table(res: &Value, cases: &[(&str, &[&str])]) {
    let mut bad = Vec::new();
    for (expr, want) in cases {
        match run(expr, res) {
            Ok(got) if got == *want => {}
            other => bad.push(format!("{expr}: want {want:?}, got {other:?}")),
        }
    }
    assert!(bad.is_empty(), "\n{}", bad.join("\n"));
}

const T: &[&str] = &["true"];
const F: &[&str] = &["false"];
const E: &[&str] = &[];

#[test]
fn paths_and_polymorphism() {
    check_table(
        &patient(),
        &[
            ("name.given", &["Peter", "James", "Jim", "Peter", "James"]),
            ("name.`given`", &["Peter", "James", "Jim", "Peter", "James"]),
            ("Patient.name.given.first()", &["Peter"]),
            ("Encounter.name.given", E),
            ("name.suffix", E),
            ("telecom.use", &["home", "work", "mobile", "old"]),
            ("birthDate", &["1974-12-25"]),
            ("name.skip(1).given", &["Jim", "Peter", "James"]),
            ("name.take(1).given.count()", &["2"]),
            (
                "name.given.where(substring($this.length()-3) = 'ter')",
                &["Peter", "Peter"],
            ),
            ("name.given.where($index = 1)", &["James"]),
            ("name[1].given", &["Jim"]),
            ("name.given.distinct()", &["Peter", "James", "Jim"]),
            ("name.given.isDistinct()", F),
            ("name.select(given.first())", &["Peter", "Jim", "Peter"]),
            ("name.where(use = 'official').family", &["Chalmers"]),
            ("name.all(given.exists())", T),
            ("name.exists(use = 'maiden')", T),
            ("name.exists(use = 'temp')", F),
            ("name.where(use='official').family.single()", &["Chalmers"]),
            ("contact.name.family.tail()", E),
            ("children().count() > 5", T),
            ("descendants().where($this = 'Peter').count()", &["2"]),
            (
                "birthDate.extension('http://hl7.org/fhir/StructureDefinition/patient-birthTime').value",
                &["1974-12-25T14:35:45-05:00"],
            ),
            ("birthDate.hasValue()", T),
            ("name.hasValue()", F),
            ("deceased", &["false"]),
            ("deceased is boolean", T),
            ("deceased.is(Boolean)", T),
            ("gender.is(code)", T),
            ("(name.given | name.family).count()", &["5"]),
            ("name.given.combine(name.family).count()", &["7"]),
            ("name.given.union(name.family).count()", &["5"]),
            ("name.given.intersect('Jim' | 'Peter' | 'Paul')", &["Peter", "Jim"]),
            ("name.given.exclude('Peter')", &["James", "Jim", "James"]),
            ("('Peter' | 'Jim').subsetOf(name.given)", T),
            ("name.given.supersetOf('Peter' | 'Paul')", F),
            ("{}.empty()", T),
            ("{}.count()", &["0"]),
            ("iif(gender = 'male', 'm', 'f')", &["m"]),
            ("iif({}, 'a')", E),
            ("Patient.repeat(contact).count()", &["1"]),
            ("managingOrganization.resolve() is Organization", T),
            ("%resource.id", &["example"]),
            ("%context.id = %rootResource.id", T),
            ("%ucum", &["http://unitsofmeasure.org"]),
            (
                "%`vs-administrative-gender`",
                &["http://hl7.org/fhir/ValueSet/administrative-gender"],
            ),
            ("name.given.aggregate($this.length() + $total, 0)", &["23"]),
            ("name.given.trace('g').count()", &["5"]),
        ],
    );
    check_table(
        &observation(),
        &[
            ("value.unit", &["lbs"]),
            ("Observation.value is Quantity", T),
            ("value.is(Period).not()", T),
            ("value.as(Quantity).unit", &["lbs"]),
            ("(value as Quantity).unit", &["lbs"]),
            ("value.ofType(Quantity).value", &["185"]),
            ("value.as(Period).start", E),
            ("value > 180 '[lb_av]'", T),
            ("value < 1 'kg'", E),
            ("value = 185 '[lb_av]'", T),
            ("value ~ 185.0 '[lb_av]'", T),
            ("issued.exists()", F),
            ("(value.exists() or dataAbsentReason.exists())", T),
            (
                "code.coding.where(system = 'http://loinc.org').code",
                &["29463-7", "3141-9"],
            ),
            ("code.coding.code contains '29463-7'", T),
            ("'3141-9' in code.coding.code", T),
        ],
    );
}

#[test]
fn literals_and_arithmetic() {
    let r = json!({"resourceType": "Basic"});
    check_table(
        &r,
        &[
            ("2 + 2 // comment", &["4"]),
            ("2 + /* inline */ 2 = 4", T),
            ("2 // comment\n / 2", &["1"]),
            ("(-1).convertsToInteger()", T),
            ("1 + 2 * 3", &["7"]),
            ("(1 + 2) * 3", &["9"]),
            ("7 div 2", &["3"]),
            ("7 mod 2", &["1"]),
            ("7.5 mod 2", &["1.5"]),
            ("10 / 4", &["2.5"]),
            ("1 / 3", &["0.33333333"]),
            ("1 / 0", E),
            ("1.5 + 1", &["2.5"]),
            ("(-5.5).abs()", &["5.5"]),
            ("1.1.ceiling()", &["2"]),
            ("(-1.1).floor()", &["-2"]),
            ("3.14159.round(2)", &["3.14"]),
            ("2.5.truncate()", &["2"]),
            ("'a' + 'b'", &["ab"]),
            ("'a' & {} & 'c'", &["ac"]),
            ("'a' + {}", E),
            ("{} + 1", E),
            ("1.0 = 1", T),
            ("1.0 = 1.00", T),
            ("1.10 ~ 1.1", T),
            ("1.012 ~ 1.01", T),
            ("1 = 1.1", F),
            ("'abc' = 'ABC'", F),
            ("'abc' ~ 'ABC'", T),
            ("'a  b' ~ 'A B'", T),
            ("{} = 1", E),
            ("{} ~ {}", T),
            ("{} ~ 1", F),
            ("(1 | 2) = (1 | 2)", T),
            ("(1 | 2) = (2 | 1)", F),
            ("(1 | 2) ~ (2 | 1)", T),
            ("1 != 2", T),
            ("1 !~ 1.0", F),
            ("'a' < 'b'", T),
            ("2 > 1.5", T),
            ("2 >= 2.0", T),
            ("4 'mg' = 4 'mg'", T),
            ("4 'mg' < 5 'mg'", T),
            ("4 'mg' = 4 'g'", E),
            ("4 days = 4 'd'", T),
            ("1 'a'.toString()", &["1 'a'"]),
            ("'10'.toInteger() + 1", &["11"]),
            ("'1.5'.toInteger()", E),
            ("'1.5'.toDecimal()", &["1.5"]),
            ("'abc'.convertsToInteger()", F),
            ("'true'.toBoolean()", T),
            ("'2019-01-02'.toDate() = @2019-01-02", T),
            ("'5 mg'.toQuantity() = 5 'mg'", T),
            ("true.toString()", &["true"]),
        ],
    );
}

#[test]
fn dates_and_times() {
    let r = json!({"resourceType": "Basic"});
    check_table(
        &r,
        &[
            ("@2015.is(Date)", T),
            ("@2015T.is(DateTime)", T),
            ("@2015-02-04T14:34:28.123.is(DateTime)", T),
            ("@T14:34.is(Time)", T),
            ("@2012-04-15 = @2012-04-15", T),
            ("@2012-04-15 = @2012-04-16", F),
            ("@2012-04-15 = @2012-04", E),
            ("@2012-04-15 > @2012-04", E),
            ("@2012-05-15 > @2012-04", T),
            ("@2012-04-15T10:00:00 = @2012-04-15T10:00:00.000", T),
            ("@2012-04-15T10:00 = @2012-04-15T10:00:00", E),
            ("@2017-11-05T01:30:00.0-04:00 = @2017-11-05T00:30:00.0-05:00", T),
            ("@2017-11-05T01:30:00.0-04:00 > @2017-11-05T01:15:00.0-05:00", F),
            ("@2017-11-05T01:30:00.0-04:00 = @2017-11-05T01:30:00.0-04:00", T),
            ("@2017-11-05T01:30:00.0-04:00 = @2017-11-05T05:30:00.0Z", T),
            ("@2018-03-01T00:30:00+01:00 < @2018-02-28T23:45:00Z", T),
            ("@2018-03-01 ~ @2018-03-01T10:00", F),
            ("@T10:30 < @T10:31:00", T),
            ("@T10:30 = @T10:30:00", E),
            ("@2018-02-18T12:23:45-05:00.toString()", &["2018-02-18T12:23:45-05:00"]),
            ("@2019-01-31 + 1 month", &["2019-02-28"]),
            ("@2019-03-01 - 1 day", &["2019-02-28"]),
            ("@2019 + 2 years", &["2021"]),
            ("@2019-12-31T23:30:00Z + 45 minutes", &["2020-01-01T00:15:00Z"]),
            ("today() > @2020-01-01", T),
            ("now() > @2020-01-01T00:00:00Z", T),
            ("today().is(Date)", T),
            ("@2014-01-25.lowBoundary()", &["2014-01-25"]),
            ("1.587.lowBoundary()", &["1.5865"]),
            ("1.587.highBoundary()", &["1.5875"]),
        ],
    );
}

#[test]
fn boolean_logic_and_empty_propagation() {
    let r = json!({"resourceType": "Basic"});
    let mut cases: Vec<(String, Vec<&str>)> = Vec::new();
    // Three-valued tables: (left, right, and, or, xor, implies).
    let rows: &[(&str, &str, &str, &str, &str, &str)] = &[
        ("true", "true", "true", "true", "false", "true"),
        ("true", "false", "false", "true", "true", "false"),
        ("true", "{}", "", "true", "", ""),
        ("false", "true", "false", "true", "true", "true"),
        ("false", "false", "false", "false", "false", "true"),
        ("false", "{}", "false", "", "", "true"),
        ("{}", "true", "", "true", "", "true"),
        ("{}", "false", "false", "", "", ""),
        ("{}", "{}", "", "", "", ""),
    ];
    for (a, b, and, or, xor, implies) in rows {
        for (op, want) in [("and", and), ("or", or), ("xor", xor), ("implies", implies)] {
            let want = if want.is_empty() { vec![] } else { vec![*want] };
            cases.push((format!("({a}) {op} ({b})"), want));
        }
    }
    let table: Vec<(&str, &[&str])> = cases.iter().map(|(e, w)| (e.as_str(), w.as_slice())).collect();
    check_table(&r, &table);
    check_table(
        &r,
        &[
            ("true.not()", F),
            ("{}.not()", E),
            ("'x'.not()", F),
            ("(true | false).allTrue()", F),
            ("(true | false).anyTrue()", T),
            ("(false | false).allFalse()", T),
            ("{}.allTrue()", T),
            ("{}.exists()", F),
            ("{}.all(false)", T),
            ("'abc'.matches('^[a-c]+$')", T),
            ("'ABCD12345678'.matches('^[A-Z]{4}[0-9]{8}$')", T),
            ("'ABC12345678'.matches('^[A-Z]{4}[0-9]{8}$')", F),
            ("'a.b'.replaceMatches('\\\\..*', '')", &["a"]),
            ("'abc'.startsWith('ab')", T),
            ("'abc'.endsWith('bc')", T),
            ("'abc'.contains('d')", F),
            ("'abc'.length()", &["3"]),
            ("'abcdef'.substring(2, 2)", &["cd"]),
            ("'abc'.substring(5)", E),
            ("'AbC'.lower()", &["abc"]),
            ("'abc'.upper()", &["ABC"]),
            ("'a-b-c'.replace('-', '+')", &["a+b+c"]),
            ("'abc'.indexOf('c')", &["2"]),
            ("'abc'.toChars().count()", &["3"]),
            ("{}.matches('x')", E),
        ],
    );
}

#[test]
fn errors_and_singletons() {
    let r = json!({"resourceType": "Basic", "code": {"coding": [{"code": "a"}, {"code": "b"}]}});
    for bad in [
        "code.coding.code.matches('a')",
        "code.coding.code and true",
        "1 > 'a'",
        "-true",
        "(1 | 2).single()",
        "%unknown",
    ] {
        assert!(
            run(bad, &r).is_err(),
            "{bad} should be an evaluation error: {:?}",
            run(bad, &r)
        );
    }
    check_table(
        &r,
        &[
            ("code.coding.code = 'a'", F),
            ("code.coding.code contains 'b'", T),
            ("code.coding.where(code = 'b').exists()", T),
            ("code.coding.code.first() = 'a'", T),
        ],
    );
    for bad in [
        "a.",
        "2 + 2 /",
        "2 + 2 /* open",
        "a.foo()",
        "where(",
        "@20x",
        "1 +",
        "exists(1, 2)",
    ] {
        assert!(Invariant::compile(bad).is_err(), "{bad} should not compile");
    }
}

#[test]
fn invariant_check_api() {
    let obs = json!({"resourceType": "Observation", "status": "final",
                     "issued": "2020-01-01T10:00:00Z",
                     "valueQuantity": {"value": 5.4, "unit": "mmol/L"},
                     "referenceRange": [{"low": {"value": 3.1}, "high": {"value": 6.2}}]});
    let ok = |expr: &str, focus: &Value, ty: &str| Invariant::compile(expr).unwrap().check(&obs, focus, ty).unwrap();
    assert!(ok("(value.exists() or dataAbsentReason.exists())", &obs, "Observation"));
    assert!(ok("issued.exists()", &obs, "Observation"));
    assert!(!ok("effective.exists()", &obs, "Observation"));
    let range = &obs["referenceRange"][0];
    assert!(ok(
        "low.exists() or high.exists() or text.exists()",
        range,
        "Observation.referenceRange"
    ));
    assert!(ok("low <= high", range, "Observation.referenceRange"));
    assert!(ok("%resource.status = 'final'", range, "Observation.referenceRange"));
    // Empty counts as satisfied: `text` is absent, so the comparison is unknown.
    assert!(ok("text = 'x'", range, "Observation.referenceRange"));
    // A primitive focus, typed: the RAMQ number check from a profile.
    let nam = json!("ABCD12345678");
    assert!(ok("$this.matches('^[A-Z]{4}[0-9]{8}$')", &nam, "string"));
    assert!(!ok("matches('^[A-Z]{4}[0-9]{8}$')", &json!("abcd1234"), "string"));
    assert!(ok("$this is string", &nam, "string"));
    assert!(ok("value.ofType(Quantity).value > 5", &obs, "Observation"));
    assert!(ok(
        "($this as dateTime).toString().length() >= 8",
        &json!("2020-01-01T10:00:00Z"),
        "dateTime"
    ));
    // Errors come back as errors, not as a verdict.
    let err = Invariant::compile("status.matches('[' + '')")
        .unwrap()
        .check(&obs, &obs, "Observation");
    assert!(err.is_err_and(|e| e.to_string().contains("regular expression")));
    // A primitive that only has extensions.
    let ext = json!({"extension": [{"url": "http://x", "valueString": "y"}]});
    let focus = Focus {
        root: &obs,
        resource: &obs,
        value: &Value::Null,
        primitive_ext: Some(&ext),
        type_name: "string",
    };
    let ele1 = Invariant::compile("hasValue() or (children().count() > id.count())").unwrap();
    assert_eq!(ele1.check_focus(&focus), Ok(true));
    let bare = Focus {
        primitive_ext: Some(&json!({"id": "x"})),
        ..focus
    };
    assert_eq!(ele1.check_focus(&bare), Ok(false));
}

#[test]
fn resolve_contained_and_bundle() {
    let res = json!({"resourceType": "CareTeam",
        "contained": [{"resourceType": "Practitioner", "id": "p1"}],
        "participant": [{"member": {"reference": "#p1"}, "onBehalfOf": {"reference": "Organization/1"}},
                        {"member": {"reference": "Patient/2"}, "onBehalfOf": {"reference": "Organization/1"}}]});
    let ctm1 = Invariant::compile(
        "onBehalfOf.exists() implies (member.resolve().iif(empty(), true, ofType(Practitioner).exists()))",
    )
    .unwrap();
    assert_eq!(
        ctm1.check(&res, &res["participant"][0], "CareTeam.participant"),
        Ok(true)
    );
    assert_eq!(
        ctm1.check(&res, &res["participant"][1], "CareTeam.participant"),
        Ok(false)
    );
    check_table(
        &res,
        &[
            ("participant.member.resolve().id", &["p1"]),
            ("participant[1].member.resolve() is Patient", T),
        ],
    );
    let bundle = json!({"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "http://x/Patient/1", "resource": {"resourceType": "Patient", "id": "1", "gender": "other"}},
        {"fullUrl": "http://x/Observation/2", "resource": {"resourceType": "Observation", "id": "2",
            "subject": {"reference": "Patient/1"}}}]});
    check_table(&bundle, &[("entry[1].resource.subject.resolve().gender", &["other"])]);
}

#[test]
fn conformance_helpers() {
    let pat = patient();
    check_table(
        &pat,
        &[
            ("conformsTo('http://hl7.org/fhir/StructureDefinition/Patient')", T),
            ("conformsTo('http://hl7.org/fhir/StructureDefinition/Observation')", F),
            (
                "conformsTo('https://carnet.dev/fhir/StructureDefinition/carnet-patient')",
                E,
            ),
            (
                "gender.memberOf('http://hl7.org/fhir/ValueSet/administrative-gender')",
                E,
            ),
            ("text.div.htmlChecks()", T),
        ],
    );
}

#[test]
fn ele_1_shortcut_agrees_with_the_general_evaluator() {
    let fast = Invariant::compile("hasValue() or (children().count() > id.count())").unwrap();
    let general = fast.clone().without_shortcuts();
    let res = json!({"resourceType": "Basic"});
    let values = [
        json!({}),
        json!({"id": "a"}),
        json!({"id": "a", "_id": {"extension": [{"url": "x", "valueString": "y"}]}}),
        json!({"text": "x"}),
        json!({"id": "a", "text": "x"}),
        json!({"given": [null]}),
        json!({"given": [null], "_given": [{"id": "g"}]}),
        json!({"_family": {"extension": [{"url": "x", "valueCode": "masked"}]}}),
        json!({"coding": []}),
        json!("text"),
        json!(3),
        json!(false),
        Value::Null,
    ];
    let exts = [
        None,
        Some(json!({"id": "only"})),
        Some(json!({"extension": [{"url": "x", "valueString": "y"}]})),
        Some(json!({"extension": []})),
    ];
    for v in &values {
        for e in &exts {
            let focus = Focus {
                root: &res,
                resource: &res,
                value: v,
                primitive_ext: e.as_ref(),
                type_name: "Element",
            };
            assert_eq!(fast.evaluate(&focus), general.evaluate(&focus), "{v} {e:?}");
        }
    }
}
