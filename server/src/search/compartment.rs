//! The R4 Patient compartment (CompartmentDefinition-patient): for each resource type,
//! the reference parameters that put a resource in a patient's compartment.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::Value;

use super::sql::SqlQuery;

const PATIENT: &str = include_str!("../../../conformance/compartment-patient.json");

fn patient_params() -> &'static HashMap<String, Vec<String>> {
    static MAP: OnceLock<HashMap<String, Vec<String>>> = OnceLock::new();
    MAP.get_or_init(|| {
        let doc: Value = serde_json::from_str(PATIENT).unwrap_or(Value::Null);
        doc.get("resource")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(t, ps)| {
                        // A parameter that is the union of others has their rows and
                        // entries (`Registry::stored_as`).
                        let reg = carnet_search::Registry::r4();
                        let ps = ps
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(Value::as_str)
                            .flat_map(|p| match reg.stored_as(t, p) {
                                Some(parts) => parts.to_vec(),
                                None => vec![p.to_string()],
                            });
                        (t.clone(), ps.collect())
                    })
                    .collect()
            })
            .unwrap_or_default()
    })
}

/// The parameters linking `res_type` to a patient; `None` when the type is not in
/// the compartment.
pub fn params(res_type: &str) -> Option<&'static [String]> {
    patient_params().get(res_type).map(Vec::as_slice)
}

/// Resources of `res_type` (alias `alias`) in the compartment of `Patient/{id}`; the
/// patient is in its own compartment.
pub fn condition(q: &mut SqlQuery, alias: &str, res_type: &str, id: &str) -> Option<String> {
    let params = params(res_type)?.to_vec();
    let mut c = format!(
        "{alias}.pk IN (SELECT cp.pk FROM idx_reference cp WHERE cp.res_type = {} AND {} \
         AND cp.target_type = 'Patient' AND cp.target_id = {})",
        q.text(res_type),
        q.in_list("cp.param", &params),
        q.text(id)
    );
    if res_type == "Patient" {
        c = format!("({c} OR {alias}.res_id = {})", q.text(id));
    }
    Some(c)
}
