//! Property test of search semantics (issue 8, point 4): random Observations, then many
//! random searches combining token, number (`value-quantity`) and date criteria with
//! every comparison prefix, OR-lists and AND-repetition. Each result must be exactly the
//! set a direct model of the R4 rules computes. Seeded, so a failure names the seed and
//! the query and is reproduced by running the test again.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use carnet_tests::{TestServer, on_both_backends};
use reqwest::Method;
use serde_json::json;

/// xorshift64*: a few lines instead of a dependency, and the same cases on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

const CODES: [&str; 4] = ["2339-0", "718-7", "4548-4", "8867-4"];
const PREFIXES: [&str; 9] = ["", "eq", "ne", "gt", "lt", "ge", "le", "sa", "eb"];
const OBSERVATIONS: usize = 120;
const SEARCHES: usize = 150;

struct Obs {
    id: String,
    code: &'static str,
    /// An integer value: `eq50` means [49.5, 50.5), which holds exactly the integer 50.
    value: i64,
    /// Day of 2020 (day precision on both sides: a date's range is the whole day).
    day: u32,
}

fn date(day: u32) -> String {
    let months = [31u32, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let (mut m, mut d) = (0usize, day);
    while d >= months[m] {
        d -= months[m];
        m += 1;
    }
    format!("2020-{:02}-{:02}", m + 1, d + 1)
}

/// The R4 prefixes on two integers (numbers) or two whole days (dates): for ranges of
/// the same width, "the range above the search value intersects the target's" is `>`.
fn compare(prefix: &str, target: i64, search: i64) -> bool {
    match prefix {
        "" | "eq" => target == search,
        "ne" => target != search,
        "gt" | "sa" => target > search,
        "lt" | "eb" => target < search,
        "ge" => target >= search,
        "le" => target <= search,
        _ => unreachable!(),
    }
}

/// One criterion: its query text and the predicate it stands for.
struct Criterion {
    query: String,
    test: Box<dyn Fn(&Obs) -> bool>,
}

fn criterion(rng: &mut Rng) -> Criterion {
    match rng.below(3) {
        0 => {
            // `code=a,b`: OR within the parameter.
            let a = *rng.pick(&CODES);
            let b = *rng.pick(&CODES);
            Criterion {
                query: format!("code={a},{b}"),
                test: Box::new(move |o| o.code == a || o.code == b),
            }
        }
        1 => {
            // sa and eb are defined for ranges: only the date criteria use them here.
            let p = *rng.pick(&PREFIXES[..7]);
            let v = rng.below(101) as i64;
            Criterion {
                query: format!("value-quantity={p}{v}"),
                test: Box::new(move |o| compare(p, o.value, v)),
            }
        }
        _ => {
            let p = *rng.pick(&PREFIXES);
            let d = rng.below(366) as u32;
            Criterion {
                query: format!("date={p}{}", date(d)),
                test: Box::new(move |o| compare(p, i64::from(o.day), i64::from(d))),
            }
        }
    }
}

async fn all_ids(s: &TestServer, query: &str) -> BTreeSet<String> {
    let (st, b) = s
        .get_json(&format!("Observation?{query}&_count=1000&_elements=id"))
        .await;
    assert_eq!(st, 200, "{query}: {b}");
    assert!(b["link"].as_array().unwrap().iter().all(|l| l["relation"] != "next"));
    b["entry"]
        .as_array()
        .map(|es| {
            es.iter()
                .map(|e| e["resource"]["id"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

async fn random_searches_match_the_model(s: &TestServer) {
    let seed = 0x5EED_CA27_u64;
    let mut rng = Rng(seed);
    let mut obs = Vec::new();
    let mut entries = Vec::new();
    for i in 0..OBSERVATIONS {
        let o = Obs {
            id: format!("prop-{i}"),
            code: CODES[rng.below(CODES.len() as u64) as usize],
            value: rng.below(101) as i64,
            day: rng.below(366) as u32,
        };
        entries.push(json!({"resource": {"resourceType": "Observation", "id": o.id, "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": o.code}]},
            "effectiveDateTime": date(o.day),
            "valueQuantity": {"value": o.value, "unit": "mg/dL", "system": "http://unitsofmeasure.org", "code": "mg/dL"}},
            "request": {"method": "PUT", "url": format!("Observation/{}", o.id)}}));
        obs.push(o);
    }
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": entries});
    let r = s.send_json(Method::POST, "", &bundle).await;
    assert_eq!(r.status().as_u16(), 200);

    let mut nonempty = 0;
    for case in 0..SEARCHES {
        // One to three criteria, ANDed (a repeated parameter is AND too).
        let n = 1 + rng.below(3) as usize;
        let criteria: Vec<Criterion> = (0..n).map(|_| criterion(&mut rng)).collect();
        let query = criteria.iter().map(|c| c.query.as_str()).collect::<Vec<_>>().join("&");
        let expected: BTreeSet<String> = obs
            .iter()
            .filter(|o| criteria.iter().all(|c| (c.test)(o)))
            .map(|o| o.id.clone())
            .collect();
        let got = all_ids(s, &query).await;
        assert_eq!(got, expected, "seed {seed:#x}, case {case}: Observation?{query}");
        nonempty += usize::from(!expected.is_empty());
    }
    // The cases are not all trivially empty.
    assert!(nonempty > SEARCHES / 4, "only {nonempty} searches matched anything");
}

on_both_backends!(random_searches_match_the_model);
