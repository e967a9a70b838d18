//! Search plans at volume. Each criterion is a set of pks; intersecting large sets is
//! what makes `code` + `date` or a chain to the Patient slow at a million resources.
//! Token and reference index rows carry facts of their resource (its one patient and
//! its one short `date` value, `search::index::CoFacts`), so the commonest combinations
//! are read as one index range:
//!
//! - `code=…&date=…`, `patient=…&date=…`: the date criteria test the folded date of the
//!   token (or reference) rows, bounded so that the date is part of the index range;
//! - `code=…&patient=…` and `code=…&subject:Patient.name=…`: the token rows of that
//!   patient (or of the patients the chain finds);
//! - `Patient?_has:Observation:patient:code=…`: for each Patient, one probe of the token
//!   rows of its Observations with that code.
//!
//! Rows whose resource has several patients or a long or repeated date carry a flag
//! and are matched the general way in a second branch, so folding never changes a
//! result (tests/search.rs compares folded and unfolded searches).

use carnet_search::{ChainStep, Criterion, Modifier, ParamType, Prefix, Registry, SearchValue};

use super::{Builder, date};
use crate::error::Result;
use crate::search::index::{MAX_FOLDED_SPAN, folds};

/// What a search's criteria become.
pub enum Unit<'c> {
    Plain(&'c Criterion),
    /// A token or reference criterion on the searched type, narrowed in its own
    /// subquery by the resource's patient and date.
    Folded {
        target: &'c Criterion,
        patient: Option<&'c Criterion>,
        dates: Vec<&'c Criterion>,
    },
    /// `_has:T:patient:<token>` on Patient.
    HasPatient(&'c Criterion),
}

impl Unit<'_> {
    /// Whether the unit is a `pk IN (…)` list the query can start from (the others
    /// test each resource of the type).
    pub fn drives(&self) -> bool {
        !matches!(self, Unit::HasPatient(_))
    }
}

/// Groups the criteria of a search on `res_type` (`None`: system level, no folding).
pub fn units<'c>(criteria: &'c [Criterion], res_type: Option<&str>) -> Vec<Unit<'c>> {
    let Some(t) = res_type.filter(|t| folds(t)) else {
        return criteria.iter().map(Unit::Plain).collect();
    };
    let on_type = |c: &Criterion| c.resource_types.len() == 1 && c.resource_types[0] == t;
    let target = criteria
        .iter()
        .position(|c| on_type(c) && token_target(c))
        .or_else(|| criteria.iter().position(|c| on_type(c) && reference_target(c)));
    let mut used = vec![false; criteria.len()];
    let mut out = Vec::new();
    if let Some(ti) = target {
        used[ti] = true;
        let is_token = criteria[ti].param_type == ParamType::Token;
        let patient = if is_token {
            criteria
                .iter()
                .enumerate()
                // A chain's first hop is on the searched type; its own types are the last hop's.
                .position(|(i, c)| !used[i] && (on_type(c) || !c.chain.is_empty()) && patient_source(t, c))
        } else {
            None
        };
        if let Some(pi) = patient {
            used[pi] = true;
        }
        let mut dates = Vec::new();
        for (i, c) in criteria.iter().enumerate() {
            if !used[i] && on_type(c) && date_source(c) {
                used[i] = true;
                dates.push(c);
            }
        }
        if patient.is_some() || !dates.is_empty() {
            out.push(Unit::Folded {
                target: &criteria[ti],
                patient: patient.map(|i| &criteria[i]),
                dates,
            });
        } else {
            used[ti] = false;
        }
    }
    for (i, c) in criteria.iter().enumerate() {
        if used[i] {
            continue;
        }
        out.push(if t == "Patient" && has_patient(c) {
            Unit::HasPatient(c)
        } else {
            Unit::Plain(c)
        });
    }
    out
}

/// A plain token criterion with codes: `code=x`, `code=s|x`, `code=|x`.
fn token_target(c: &Criterion) -> bool {
    c.chain.is_empty()
        // `_id` is a column of `resources`, never an `idx_token` row: folding it found
        // nothing (`Patient?_has:Observation:subject:_id=…`, found by tests/probes.rs).
        && !crate::search::index::is_resource_column(&c.param)
        && c.param_type == ParamType::Token
        && c.modifier.is_none()
        && c.values
            .iter()
            .all(|v| matches!(&v.value, SearchValue::Token(t) if t.code.is_some()))
}

/// A plain reference criterion to literal `Type/id`s.
fn reference_target(c: &Criterion) -> bool {
    c.chain.is_empty()
        && c.param_type == ParamType::Reference
        && matches!(c.modifier, None | Some(Modifier::Type(_)))
        && c.values.iter().all(|v| {
            matches!(&v.value, SearchValue::Reference(r)
                if r.url.is_none() && r.target_type.is_some() && r.target_id.is_some())
        })
}

/// Whether reference parameter `param` of `t` names the same Patient as its `patient`
/// parameter (`patient` itself, or `subject` where `patient` is
/// `subject.where(resolve() is Patient)`).
fn names_the_patient(t: &str, param: &str) -> bool {
    match param {
        "patient" => Registry::r4().param(t, "patient").is_some(),
        "subject" => Registry::r4()
            .param(t, "patient")
            .and_then(|p| p.expression_text.as_deref())
            // The definition's text covers every type it applies to: `A.x | B.y | …`.
            .is_some_and(|e| {
                let branch = format!("{t}.subject.where(resolve() is Patient)");
                e.split('|').any(|b| b.trim() == branch)
            }),
        _ => false,
    }
}

/// `patient=Patient/1` (or `subject=`), or a chain `patient:Patient.x=…` /
/// `subject:Patient.x=…` whose first hop lands on Patients only.
fn patient_source(t: &str, c: &Criterion) -> bool {
    match c.chain.first() {
        None => {
            c.param_type == ParamType::Reference
                && names_the_patient(t, &c.param)
                && matches!(c.modifier, None | Some(Modifier::Type(_)))
                && c.values.iter().all(|v| {
                    matches!(&v.value, SearchValue::Reference(r)
                        if r.url.is_none() && r.target_type.as_deref() == Some("Patient") && r.target_id.is_some())
                })
        }
        Some(ChainStep::Forward {
            param, target_types, ..
        }) => names_the_patient(t, param) && target_types.len() == 1 && target_types[0] == "Patient",
        Some(ChainStep::Reverse { .. }) => false,
    }
}

/// A plain `date` criterion.
fn date_source(c: &Criterion) -> bool {
    c.chain.is_empty()
        && c.param == "date"
        && c.param_type == ParamType::Date
        && c.modifier.is_none()
        && c.values.iter().all(|v| matches!(v.value, SearchValue::Date { .. }))
}

/// `_has:T:patient:code=…` (or `subject` where it names the patient), one hop.
fn has_patient(c: &Criterion) -> bool {
    match c.chain.as_slice() {
        [ChainStep::Reverse { source_type, param }] => {
            folds(source_type)
                && names_the_patient(source_type, param)
                && token_target(&Criterion {
                    chain: Vec::new(),
                    ..c.clone()
                })
        }
        _ => false,
    }
}

/// The range of folded start dates (`rdate_low`) a date criterion can match, given
/// that folded values are at most [`MAX_FOLDED_SPAN`] long; `None` for no bound.
fn low_bounds(c: &Criterion, now: i64) -> (Option<i64>, Option<i64>) {
    let mut lo: Option<i64> = Some(i64::MAX);
    let mut hi: Option<i64> = Some(i64::MIN);
    for v in &c.values {
        let SearchValue::Date { prefix, range } = &v.value else {
            return (None, None);
        };
        let (ql, qh) = (range.low, range.high);
        let span = MAX_FOLDED_SPAN;
        // For each prefix: the folded start must lie in [a, b] (None: unbounded).
        let (a, b) = match prefix {
            Prefix::Eq => (Some(ql), Some(qh)),
            Prefix::Ne => (None, None),
            Prefix::Gt => (Some(qh.saturating_sub(span)), None),
            Prefix::Ge => (Some(ql.saturating_sub(span)), None),
            Prefix::Lt | Prefix::Eb => (None, Some(ql)),
            Prefix::Le => (None, Some(qh)),
            Prefix::Sa => (Some(qh), None),
            Prefix::Ap => {
                let d = date::ap_margin(ql, now);
                (
                    Some(ql.saturating_sub(d).saturating_sub(span)),
                    Some(qh.saturating_add(d)),
                )
            }
        };
        lo = match (lo, a) {
            (Some(x), Some(y)) => Some(x.min(y)),
            _ => None,
        };
        hi = match (hi, b) {
            (Some(x), Some(y)) => Some(x.max(y)),
            _ => None,
        };
    }
    (lo, hi)
}

impl Builder<'_> {
    /// A folded unit's condition on resource alias `alias` (of type `t`).
    pub(crate) fn folded(
        &mut self,
        target: &Criterion,
        patient: Option<&Criterion>,
        dates: &[&Criterion],
        alias: &str,
    ) -> Result<String> {
        let token = target.param_type == ParamType::Token;
        let table = if token { "idx_token" } else { "idx_reference" };
        let a = self.alias("f");
        // Branch 1: the folded facts.
        let mut fast = self.target_conditions(target, &a)?;
        if let Some(p) = patient {
            fast.push(self.patient_condition(p, &format!("{a}.rpatient"))?);
        }
        let (mut lo, mut hi) = (None::<i64>, None::<i64>);
        for (i, d) in dates.iter().enumerate() {
            let (l, h) = low_bounds(d, self.ctx.now);
            lo = if i == 0 { l } else { max_opt(lo, l) };
            hi = if i == 0 { h } else { min_opt(hi, h) };
            let ors: Vec<String> = d
                .values
                .iter()
                .filter_map(|v| match &v.value {
                    SearchValue::Date { prefix, range } => Some(date::cond(
                        &mut self.q,
                        &format!("{a}.rdate_low"),
                        &format!("{a}.rdate_high"),
                        *prefix,
                        *range,
                        self.ctx.now,
                    )),
                    _ => None,
                })
                .collect();
            fast.push(format!("({})", ors.join(" OR ")));
        }
        if !dates.is_empty() {
            fast.push(format!("{a}.rdate_low IS NOT NULL"));
            if let Some(l) = lo {
                fast.push(format!("{a}.rdate_low >= {}", self.q.int(l)));
            }
            if let Some(h) = hi {
                fast.push(format!("{a}.rdate_low <= {}", self.q.int(h)));
            }
        }
        // Branch 2: resources with several patients or an unfolded date, the general way.
        let b = self.alias("f");
        let mut common = self.target_conditions(target, &b)?;
        common.push(format!("{b}.rflags <> 0"));
        // The flagged branch holds few rows: its other criteria probe each row's own
        // resource. As lists, SQLite first listed every date row of the type (67 ms
        // for code+date at a million resources), or every Observation of the Patients
        // a chain finds (`subject:Patient.name=gagnon`: ~13,400 references, 3–4 ms),
        // to test them against no flagged row at all.
        if let Some(p) = patient {
            common.push(self.probe(p, &target.resource_types, &b)?);
        }
        for d in dates {
            common.push(self.probe(d, &d.resource_types, &b)?);
        }
        Ok(format!(
            "{alias}.pk IN (SELECT {a}.pk FROM {table} {a} WHERE {} UNION ALL SELECT {b}.pk FROM {table} {b} WHERE {})",
            fast.join(" AND "),
            common.join(" AND ")
        ))
    }

    /// The target criterion's own test on index alias `a`.
    fn target_conditions(&mut self, target: &Criterion, a: &str) -> Result<Vec<String>> {
        let targets = super::reference_targets(target);
        let mut values = Vec::new();
        for v in &target.values {
            values.push(self.value(a, &v.value, target.modifier.as_ref(), &targets, target)?);
        }
        Ok(vec![
            format!("{a}.res_type = {}", self.q.text(&target.resource_types[0])),
            super::param_cond(&mut self.q, a, &target.resource_types, &target.param, ""),
            format!("({})", values.join(" OR ")),
        ])
    }

    /// `col` (a folded patient id) is one of the patients criterion `p` names.
    fn patient_condition(&mut self, p: &Criterion, col: &str) -> Result<String> {
        match p.chain.first() {
            None => {
                let ids: Vec<String> = p
                    .values
                    .iter()
                    .filter_map(|v| match &v.value {
                        SearchValue::Reference(r) => r.target_id.clone(),
                        _ => None,
                    })
                    .collect();
                Ok(self.q.in_list(col, &ids))
            }
            Some(_) => {
                let t = self.alias("t");
                let mut w = vec![format!("{t}.res_type = 'Patient'"), format!("{t}.deleted = FALSE")];
                w.extend(self.scope(&t));
                w.push(self.step(p, 1, &["Patient".to_string()], &t)?);
                Ok(format!(
                    "{col} IN (SELECT {t}.res_id FROM resources {t} WHERE {})",
                    w.join(" AND ")
                ))
            }
        }
    }

    /// `_has:T:patient:code=…` on Patient alias `alias`.
    pub(crate) fn has_patient(&mut self, c: &Criterion, alias: &str) -> Result<String> {
        let Some(ChainStep::Reverse { source_type, param }) = c.chain.first() else {
            return self.criterion(c, &["Patient".to_string()], alias);
        };
        let leaf = Criterion {
            chain: Vec::new(),
            resource_types: vec![source_type.clone()],
            ..c.clone()
        };
        let (a, s) = (self.alias("h"), self.alias("s"));
        let mut values = Vec::new();
        for v in &leaf.values {
            values.push(self.value(&a, &v.value, None, &[], &leaf)?);
        }
        let mut w = vec![
            format!("{a}.res_type = {}", self.q.text(source_type)),
            super::param_cond(&mut self.q, &a, &leaf.resource_types, &leaf.param, ""),
            format!("({})", values.join(" OR ")),
            format!("{s}.deleted = FALSE"),
        ];
        w.extend(self.scope(&s));
        let fast = format!(
            "SELECT 1 FROM idx_token {a} JOIN resources {s} ON {s}.pk = {a}.pk WHERE {} AND {a}.rpatient = {alias}.res_id",
            w.join(" AND ")
        );
        // Sources naming several patients have no folded patient: their references.
        let rf = self.alias("ref");
        let slow = format!(
            "SELECT 1 FROM idx_token {a} JOIN resources {s} ON {s}.pk = {a}.pk \
             JOIN idx_reference {rf} ON {rf}.pk = {a}.pk WHERE {} AND {a}.rflags <> 0 AND {} \
             AND {rf}.target_type = 'Patient' AND {rf}.target_id = {alias}.res_id",
            w.join(" AND "),
            super::param_cond(&mut self.q, &rf, &leaf.resource_types, param, "")
        );
        // One EXISTS over both branches: PostgreSQL turns `EXISTS … OR EXISTS …` into
        // two hashed subplans, each listing every source with the code (5,359
        // Observations, 30 ms at a million resources) before the first Patient; one
        // EXISTS stays a probe per Patient until the page is full (2.8 ms).
        Ok(format!("EXISTS ({fast} UNION ALL {slow})"))
    }
}

fn max_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, None) | (None, x) => x,
    }
}

fn min_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) | (None, x) => x,
    }
}

#[cfg(test)]
mod tests {
    use carnet_search::{Registry, parse_query};

    use super::{Unit, units};

    /// What each criterion of `query` on `t` becomes: `P` plain, `F<n>` folded with n
    /// criteria besides its target, `H` a `_has` on the patient.
    fn shape(t: &str, query: &str) -> Vec<String> {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
        let parsed = parse_query(Registry::r4(), Some(t), &pairs, false).unwrap_or_default();
        units(&parsed.criteria, Some(t))
            .iter()
            .map(|u| match u {
                Unit::Plain(c) => format!("P {}", c.param),
                Unit::Folded { target, patient, dates } => {
                    format!("F{} {}", usize::from(patient.is_some()) + dates.len(), target.param)
                }
                Unit::HasPatient(c) => format!("H {}", c.param),
            })
            .collect()
    }

    #[test]
    fn common_combinations_fold() {
        assert_eq!(shape("Observation", "code=1&date=ge2024&date=lt2025"), ["F2 code"]);
        assert_eq!(shape("Observation", "subject=Patient/1&code=1"), ["F1 code"]);
        assert_eq!(shape("Observation", "subject:Patient.name=x&code=1"), ["F1 code"]);
        assert_eq!(shape("Observation", "patient=1&date=2024"), ["F1 patient"]);
        assert_eq!(shape("Patient", "_has:Observation:patient:code=1"), ["H code"]);
    }

    #[test]
    fn what_cannot_fold_stays_plain() {
        // A bare subject id may be a Group or a Device: not necessarily the patient.
        assert_eq!(shape("Observation", "subject=1&code=1"), ["P subject", "P code"]);
        assert_eq!(shape("Observation", "code:not=1&date=2024"), ["P code", "P date"]);
        assert_eq!(shape("Observation", "code=1&date:missing=true"), ["P code", "P date"]);
        assert_eq!(shape("Observation", "code=1"), ["P code"]);
        assert_eq!(shape("Patient", "_has:Observation:performer:code=1"), ["P code"]);
    }
}
