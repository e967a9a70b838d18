//! The conformance resources (`StructureDefinition`, `ValueSet`, `CodeSystem`,
//! `SearchParameter`): read and search, public like `/metadata` since they hold no
//! patient data, and read-only since they are part of the build (docs/validation.md).

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::json;

use crate::conformance::{catalog, search};
use crate::error::{Error, Result};
use crate::fhir::bundle::{BundleWriter, Link};
use crate::fhir::form::parse_form;
use crate::fhir::summary::Shape;
use crate::http::extract::{Conditions, OptionalFhirBody, Query};
use crate::http::respond;
use crate::state::AppState;

pub async fn read(res_type: &str, id: &str, q: &Query) -> Result<Response> {
    let shape = Shape::from_params(q.get("_summary"), q.get("_elements"))
        .map_err(|v| Error::invalid_at("value", "_summary", format!("Unsupported {v}")))?;
    let r = catalog()?.read(res_type, id).ok_or_else(|| {
        Error::NotFound(format!(
            "{res_type}/{} not found",
            crate::service::ids::truncate(id, 64)
        ))
    })?;
    Ok(respond::value(StatusCode::OK, &shape.apply(r.resource())))
}

pub async fn search(
    state: &AppState,
    res_type: &str,
    pairs: &[(String, String)],
    cond: &Conditions,
) -> Result<Response> {
    let c = catalog()?;
    let default = usize::try_from(state.config().default_page).unwrap_or(50);
    let page = search::search(c, res_type, pairs, default, cond.lenient)?;
    let base = format!("{}/{res_type}", state.base_url());
    let query = |offset: Option<usize>| {
        let mut ser = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &page.applied {
            ser.append_pair(k, v);
        }
        if let Some(o) = offset.filter(|o| *o > 0) {
            ser.append_pair("_offset", &o.to_string());
        }
        let q = ser.finish();
        if q.is_empty() {
            base.clone()
        } else {
            format!("{base}?{q}")
        }
    };
    let self_url = query(Some(page.offset));
    let next_url =
        (!page.count_only && page.offset + page.count < page.total).then(|| query(Some(page.offset + page.count)));
    let prev_url = (!page.count_only && page.offset > 0).then(|| query(Some(page.offset.saturating_sub(page.count))));
    let mut links = vec![Link {
        relation: "self",
        url: &self_url,
    }];
    if let Some(u) = &next_url {
        links.push(Link {
            relation: "next",
            url: u,
        });
    }
    if let Some(u) = &prev_url {
        links.push(Link {
            relation: "previous",
            url: u,
        });
    }
    let total = i64::try_from(page.total).unwrap_or(i64::MAX);
    let mut w = BundleWriter::new("searchset", state.now(), Some(total), &links);
    for r in &page.entries {
        let id = r.id();
        let bytes = serde_json::to_vec(&r.resource()).unwrap_or_default();
        w.entry(
            Some(&format!("{base}/{id}")),
            Some(&bytes),
            &json!({"search": {"mode": "match"}}),
        );
    }
    if !page.ignored.is_empty() {
        let oo = crate::fhir::outcome::outcome(&[crate::fhir::outcome::Issue::warning(
            "not-supported",
            format!("Parameters ignored: {}", page.ignored.join(", ")),
        )]);
        w.entry(
            None,
            Some(&serde_json::to_vec(&oo).unwrap_or_default()),
            &json!({"search": {"mode": "outcome"}}),
        );
    }
    Ok(respond::json(StatusCode::OK, w.finish()))
}

/// Built-in definitions have one version, the build's.
async fn no_history() -> Error {
    Error::MethodNotAllowed("Conformance resources are part of this server's build and keep no history".to_string())
}

async fn no_instance_validate() -> Error {
    Error::MethodNotAllowed(
        "Conformance resources are part of this server's build; validate a definition with POST [type]/$validate"
            .to_string(),
    )
}

/// Writes to built-in definitions.
pub async fn read_only() -> Error {
    Error::MethodNotAllowed(
        "Conformance resources are part of this server's build and cannot be changed through the API".to_string(),
    )
}

/// Public routes for each catalog type: search (GET and `_search`), read; writes 405.
/// Static paths take precedence over the generic `/{type}` routes.
pub fn routes() -> Router<AppState> {
    use crate::http::terminology as t;
    let mut r = Router::new()
        .route("/ValueSet/$expand", get(t::expand_type).post(t::expand_type))
        .route(
            "/ValueSet/{id}/$expand",
            get(t::expand_instance).post(t::expand_instance),
        )
        .route(
            "/ValueSet/$validate-code",
            get(t::value_set_validate_code).post(t::value_set_validate_code),
        )
        .route(
            "/ValueSet/{id}/$validate-code",
            get(t::value_set_validate_code).post(t::value_set_validate_code),
        )
        .route(
            "/CodeSystem/$validate-code",
            get(t::code_system_validate_code).post(t::code_system_validate_code),
        )
        .route(
            "/CodeSystem/{id}/$validate-code",
            get(t::code_system_validate_code).post(t::code_system_validate_code),
        );
    for &ty in catalog::TYPES {
        r = r
            .route(
                &format!("/{ty}"),
                get(move |s: State<AppState>, c: Conditions, q: Query| async move { search(&s, ty, &q.0, &c).await })
                    .post(read_only)
                    .put(read_only)
                    .patch(read_only)
                    .delete(read_only),
            )
            .route(
                &format!("/{ty}/_search"),
                post(
                    move |s: State<AppState>, c: Conditions, q: Query, body: axum::body::Bytes| async move {
                        let mut pairs = q.0;
                        pairs.extend(parse_form(&body)?);
                        search(&s, ty, &pairs, &c).await
                    },
                ),
            )
            // Validating a definition reads nothing stored: public too.
            .route(
                &format!("/{ty}/$validate"),
                post(move |s: State<AppState>, q: Query, body: OptionalFhirBody| async move {
                    crate::http::validate::type_level(s, Path(ty.to_string()), q, body).await
                }),
            )
            .route(&format!("/{ty}/_history"), get(no_history))
            .route(&format!("/{ty}/{{id}}/_history"), get(no_history))
            .route(&format!("/{ty}/{{id}}/_history/{{vid}}"), get(no_history))
            .route(
                &format!("/{ty}/{{id}}/$validate"),
                get(no_instance_validate).post(no_instance_validate),
            )
            .route(
                &format!("/{ty}/{{id}}"),
                get(move |Path(id): Path<String>, q: Query| async move { read(ty, &id, &q).await })
                    .put(read_only)
                    .patch(read_only)
                    .delete(read_only),
            );
    }
    r
}
