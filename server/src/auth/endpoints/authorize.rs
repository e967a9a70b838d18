//! The authorize endpoint: checks the app's request, then walks the user through
//! password → 6-digit code → (representatives of several patients) patient picker, and
//! redirects back with `code` and `state`. The request in progress is a database row
//! (`auth_requests`) named by a random handle in the pages' hidden `tx` field, so any
//! process can serve any step.

use std::collections::HashMap;

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::Row;

use crate::auth::accounts::{self, Account, Represented, Status};
use crate::auth::clients;
use crate::auth::codes::{self, Kind, Redeemed};
use crate::auth::i18n::{Lang, t};
use crate::auth::lockout;
use crate::auth::pages::{self, error_text, field, form, hidden, submit};
use crate::auth::scopes::{ActorKind, Context, Scopes};
use crate::auth::sender::Message;
use crate::auth::sessions::Grant;
use crate::error::Error;
use crate::on_conn;
use crate::state::AppState;

/// What the app asked for, kept while the user signs in.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct AuthRequest {
    client_id: String,
    redirect_uri: String,
    scope: String,
    state: Option<String>,
    code_challenge: String,
    nonce: Option<String>,
    launch: Option<String>,
    /// The EHR launch context `launch` resolved to (`endpoints::launch`).
    #[serde(default)]
    launch_context: Option<LaunchContext>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct LaunchContext {
    patient: String,
    practitioner: Option<String>,
}

fn redirect_with(uri: &str, pairs: &[(&str, &str)]) -> Response {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        q.append_pair(k, v);
    }
    let sep = if uri.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{uri}{sep}{}", q.finish())).into_response()
}

fn redirect_error(req: &AuthRequest, error: &str, description: &str) -> Response {
    let mut pairs = vec![("error", error), ("error_description", description)];
    if let Some(s) = &req.state {
        pairs.push(("state", s));
    }
    redirect_with(&req.redirect_uri, &pairs)
}

fn internal(e: Error) -> Response {
    e.into_response()
}

/// GET `/auth/authorize`: the app's authorization request.
pub async fn start(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(p): Query<HashMap<String, String>>,
) -> Response {
    let lang = Lang::from_headers(&headers);
    let get = |k: &str| p.get(k).filter(|v| !v.is_empty()).cloned();
    let (Some(client_id), Some(redirect_uri)) = (get("client_id"), get("redirect_uri")) else {
        return pages::page(
            StatusCode::BAD_REQUEST,
            lang,
            "title.error",
            &error_text(t(lang, "err.client")),
        );
    };
    let client = match clients::get(state.store(), &client_id).await {
        Ok(c) => c,
        Err(e) => return internal(e),
    };
    // Never redirect to an address the client did not register (open redirector).
    let Some(client) = client.filter(|c| c.redirect_uris.iter().any(|u| u == &redirect_uri)) else {
        return pages::page(
            StatusCode::BAD_REQUEST,
            lang,
            "title.error",
            &error_text(t(lang, "err.client")),
        );
    };
    let req = AuthRequest {
        client_id: client.client_id.clone(),
        redirect_uri,
        scope: get("scope").unwrap_or_default(),
        state: get("state"),
        code_challenge: get("code_challenge").unwrap_or_default(),
        nonce: get("nonce"),
        launch: get("launch"),
        launch_context: None,
    };
    if get("response_type").as_deref() != Some("code") {
        return redirect_error(&req, "unsupported_response_type", "response_type must be code");
    }
    if req.code_challenge.is_empty() || get("code_challenge_method").as_deref() != Some("S256") {
        return redirect_error(
            &req,
            "invalid_request",
            "PKCE with code_challenge_method S256 is required",
        );
    }
    if get("aud").as_deref().map(|a| a.trim_end_matches('/')) != Some(state.base_url()) {
        return redirect_error(&req, "invalid_request", "aud must be this server's FHIR base URL");
    }
    let mut req = req;
    if let Some(launch) = &req.launch {
        match super::launch::resolve(&state, launch).await {
            Ok(Some(c)) => {
                req.launch_context = Some(LaunchContext {
                    patient: c.patient,
                    practitioner: c.practitioner,
                })
            }
            Ok(None) => return redirect_error(&req, "invalid_request", "unknown, used or expired launch"),
            Err(e) => return internal(e),
        }
    }
    let now = state.now();
    let id = match crate::auth::random_token() {
        Ok(id) => id,
        Err(e) => return internal(e),
    };
    let params = serde_json::to_string(&req).unwrap_or_default();
    let stored = async {
        let mut tx = state.store().begin_write().await?;
        on_conn!(&mut tx, |c| sqlx::query(
            "DELETE FROM auth_requests WHERE expires_at < $1"
        )
        .bind(now)
        .execute(c)
        .await?
        .rows_affected());
        on_conn!(&mut tx, |c| sqlx::query(
            "INSERT INTO auth_requests (id, params, stage, expires_at, created_at) VALUES ($1, $2, 'password', $3, $4)"
        )
        .bind(&id)
        .bind(&params)
        .bind(now + crate::auth::AUTH_REQUEST_MICROS)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected());
        tx.commit().await?;
        Ok::<_, Error>(())
    }
    .await;
    if let Err(e) = stored {
        return internal(e);
    }
    password_page(lang, &id, "")
}

fn password_page(lang: Lang, tx: &str, error: &str) -> Response {
    let body = format!(
        "{}{}",
        error_text(error),
        form(
            "authorize",
            &format!(
                "{}{}{}{}",
                hidden("tx", tx),
                field(lang, "username", "field.username", "text", "username"),
                field(lang, "password", "field.password", "password", "current-password"),
                submit(lang, "button.continue", "continue")
            )
        )
    );
    pages::page(
        if error.is_empty() {
            StatusCode::OK
        } else {
            StatusCode::UNAUTHORIZED
        },
        lang,
        "title.signin",
        &body,
    )
}

fn code_page(lang: Lang, tx: &str, error: &str) -> Response {
    let body = format!(
        "{}<p>{}</p>{}{}",
        error_text(error),
        t(lang, "hint.code_sent"),
        form(
            "authorize",
            &format!(
                "{}{}{}",
                hidden("tx", tx),
                field(lang, "code", "field.code", "text", "one-time-code"),
                submit(lang, "button.continue", "continue")
            )
        ),
        form(
            "authorize",
            &format!("{}{}", hidden("tx", tx), submit(lang, "button.resend", "resend"))
        )
    );
    pages::page(
        if error.is_empty() {
            StatusCode::OK
        } else {
            StatusCode::UNAUTHORIZED
        },
        lang,
        "title.code",
        &body,
    )
}

fn patient_page(lang: Lang, tx: &str, choices: &[Represented]) -> Response {
    let mut radios = String::new();
    for (i, c) in choices.iter().enumerate() {
        radios.push_str(&format!(
            "<p><input type=\"radio\" id=\"p{i}\" name=\"patient\" value=\"{}\" required><label for=\"p{i}\">{}</label></p>",
            pages::escape(&c.patient),
            pages::escape(&c.display)
        ));
    }
    let body = form(
        "authorize",
        &format!(
            "{}{radios}{}",
            hidden("tx", tx),
            submit(lang, "button.continue", "continue")
        ),
    );
    pages::page(StatusCode::OK, lang, "title.patient", &body)
}

fn message_page(lang: Lang, status: StatusCode, key: &str) -> Response {
    pages::page(status, lang, "title.error", &error_text(t(lang, key)))
}

struct Pending {
    req: AuthRequest,
    account_id: Option<String>,
    stage: String,
}

async fn load(state: &AppState, id: &str) -> Result<Option<Pending>, Error> {
    let mut tx = state.store().reader().await?;
    let row = on_conn!(&mut tx, |c| sqlx::query(
        "SELECT params, account_id, stage FROM auth_requests WHERE id = $1 AND expires_at > $2"
    )
    .bind(id)
    .bind(state.now())
    .fetch_optional(c)
    .await?
    .map(|r| (
        r.get::<String, _>(0),
        r.get::<Option<String>, _>(1),
        r.get::<String, _>(2)
    )));
    Ok(row.and_then(|(params, account_id, stage)| {
        serde_json::from_str(&params)
            .ok()
            .map(|req| Pending { req, account_id, stage })
    }))
}

async fn set_stage(state: &AppState, id: &str, stage: &str, account_id: Option<&str>) -> Result<(), Error> {
    let mut tx = state.store().begin_write().await?;
    on_conn!(&mut tx, |c| sqlx::query(
        "UPDATE auth_requests SET stage = $1, account_id = $2 WHERE id = $3"
    )
    .bind(stage)
    .bind(account_id)
    .bind(id)
    .execute(c)
    .await?
    .rows_affected());
    tx.commit().await?;
    Ok(())
}

async fn finish_request(state: &AppState, id: &str) -> Result<(), Error> {
    let mut tx = state.store().begin_write().await?;
    on_conn!(&mut tx, |c| sqlx::query("DELETE FROM auth_requests WHERE id = $1")
        .bind(id)
        .execute(c)
        .await?
        .rows_affected());
    tx.commit().await?;
    Ok(())
}

/// Sends a fresh 6-digit code; the previous one for this sign-in stops working.
async fn send_code(state: &AppState, lang: Lang, tx_id: &str, account: &Account) -> Result<(), Error> {
    let code = codes::six_digits()?;
    codes::issue(
        state.store(),
        Kind::SignIn,
        &code,
        tx_id,
        &json!({}),
        crate::auth::SIGNIN_CODE_MICROS,
        state.now(),
        true,
    )
    .await?;
    state.auth().sender.send(&Message {
        to: account.contact.clone(),
        subject: t(lang, "mail.signin.subject").to_string(),
        body: t(lang, "mail.signin.body").replace("{code}", &code),
        code: Some(code),
    })
}

/// POST `/auth/authorize`: one step of the sign-in.
pub async fn step(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let lang = Lang::from_headers(&headers);
    match step_inner(&state, lang, &f).await {
        Ok(r) => r,
        Err(e) => internal(e),
    }
}

async fn step_inner(state: &AppState, lang: Lang, f: &HashMap<String, String>) -> Result<Response, Error> {
    let field = |k: &str| f.get(k).map(String::as_str).unwrap_or("");
    let tx_id = field("tx");
    let Some(pending) = load(state, tx_id).await? else {
        return Ok(message_page(lang, StatusCode::BAD_REQUEST, "err.request"));
    };
    match pending.stage.as_str() {
        "password" => {
            let Some(account) = accounts::by_username(state.store(), field("username")).await? else {
                crate::auth::passwords::verify_dummy(field("password"));
                return Ok(password_page(lang, tx_id, t(lang, "err.credentials")));
            };
            if account.locked {
                return Ok(password_page(lang, tx_id, t(lang, "err.locked")));
            }
            if account.status != Status::Active || !account.check_password(field("password")) {
                let locked = lockout::record_failure(state.store(), &account.id).await?;
                let key = if locked { "err.locked" } else { "err.credentials" };
                return Ok(password_page(lang, tx_id, t(lang, key)));
            }
            if accounts::is_patient_facing(&account)
                && let Err(r) = accounts::represented(state.store(), &account, state.now()).await?
            {
                return Ok(password_page(lang, tx_id, r.text(lang)));
            }
            send_code(state, lang, tx_id, &account).await?;
            set_stage(state, tx_id, "code", Some(&account.id)).await?;
            Ok(code_page(lang, tx_id, ""))
        }
        "code" => {
            let Some(account) = account_of(state, &pending).await? else {
                return Ok(message_page(lang, StatusCode::BAD_REQUEST, "err.request"));
            };
            if account.locked {
                return Ok(message_page(lang, StatusCode::FORBIDDEN, "err.locked"));
            }
            if f.contains_key("resend") {
                send_code(state, lang, tx_id, &account).await?;
                return Ok(code_page(lang, tx_id, ""));
            }
            match codes::redeem(state.store(), Kind::SignIn, field("code").trim(), tx_id, state.now()).await? {
                Redeemed::Ok { .. } => {}
                _ => {
                    let locked = lockout::record_failure(state.store(), &account.id).await?;
                    if locked {
                        return Ok(message_page(lang, StatusCode::FORBIDDEN, "err.locked"));
                    }
                    return Ok(code_page(lang, tx_id, t(lang, "err.code")));
                }
            }
            lockout::reset(state.store(), &account.id).await?;
            let choices = match accounts::represented(state.store(), &account, state.now()).await? {
                Ok(c) => c,
                Err(r) => {
                    return Ok(pages::page(
                        StatusCode::FORBIDDEN,
                        lang,
                        "title.error",
                        &error_text(r.text(lang)),
                    ));
                }
            };
            if choices.len() > 1 {
                set_stage(state, tx_id, "patient", Some(&account.id)).await?;
                return Ok(patient_page(lang, tx_id, &choices));
            }
            complete(state, tx_id, &pending.req, &account, choices.first()).await
        }
        "patient" => {
            let Some(account) = account_of(state, &pending).await? else {
                return Ok(message_page(lang, StatusCode::BAD_REQUEST, "err.request"));
            };
            let choices = match accounts::represented(state.store(), &account, state.now()).await? {
                Ok(c) => c,
                Err(r) => {
                    return Ok(pages::page(
                        StatusCode::FORBIDDEN,
                        lang,
                        "title.error",
                        &error_text(r.text(lang)),
                    ));
                }
            };
            let Some(chosen) = choices.iter().find(|c| c.patient == field("patient")) else {
                return Ok(patient_page(lang, tx_id, &choices));
            };
            complete(state, tx_id, &pending.req, &account, Some(chosen)).await
        }
        _ => Ok(message_page(lang, StatusCode::BAD_REQUEST, "err.request")),
    }
}

async fn account_of(state: &AppState, pending: &Pending) -> Result<Option<Account>, Error> {
    match &pending.account_id {
        Some(id) => accounts::by_id(state.store(), id).await,
        None => Ok(None),
    }
}

/// Grants what may be granted and redirects back to the app with a code.
async fn complete(
    state: &AppState,
    tx_id: &str,
    req: &AuthRequest,
    account: &Account,
    chosen: Option<&Represented>,
) -> Result<Response, Error> {
    finish_request(state, tx_id).await?;
    let Some(client) = clients::get(state.store(), &req.client_id).await? else {
        return Ok(redirect_error(
            req,
            "unauthorized_client",
            "the client is no longer registered",
        ));
    };
    let kind = if accounts::is_patient_facing(account) {
        ActorKind::PatientFacing
    } else {
        ActorKind::Practitioner
    };
    let mut granted = Scopes::parse(&req.scope).0.narrow(&client.scopes, kind);
    let (fhir_user, patient) = match (kind, chosen) {
        (ActorKind::PatientFacing, Some(c)) => (c.fhir_user.clone(), Some(c.patient.clone())),
        (ActorKind::PatientFacing, None) => {
            return Ok(redirect_error(req, "access_denied", "no record can be accessed"));
        }
        _ => {
            // patient/ scopes only with an EHR launch on one patient (policy: "when an
            // app is launched on one patient"), for the practitioner it names if any.
            let practitioner_id = account.fhir_user.rsplit('/').next().unwrap_or("");
            let context = req
                .launch_context
                .as_ref()
                .filter(|c| granted.has("launch") && c.practitioner.as_deref().is_none_or(|p| p == practitioner_id));
            match context {
                Some(c) => (account.fhir_user.clone(), Some(c.patient.clone())),
                None => {
                    granted.resources.retain(|r| r.context != Context::Patient);
                    (account.fhir_user.clone(), None)
                }
            }
        }
    };
    if granted.resources.is_empty() {
        return Ok(redirect_error(
            req,
            "invalid_scope",
            "none of the requested scopes can be granted to this user",
        ));
    }
    let grant = Grant {
        scope: granted.to_string(),
        fhir_user: Some(fhir_user),
        patient,
        subject: account.id.clone(),
    };
    let code = crate::auth::random_token()?;
    let data = json!({
        "client_id": req.client_id,
        "redirect_uri": req.redirect_uri,
        "code_challenge": req.code_challenge,
        "nonce": req.nonce,
        "account": account.id,
        "session": crate::auth::random_token()?,
        "grant": grant,
    });
    codes::issue(
        state.store(),
        Kind::Authorization,
        &code,
        &account.id,
        &data,
        crate::auth::AUTHZ_CODE_MICROS,
        state.now(),
        false,
    )
    .await?;
    let mut pairs = vec![("code", code.as_str())];
    if let Some(s) = &req.state {
        pairs.push(("state", s));
    }
    let mut resp = redirect_with(&req.redirect_uri, &pairs);
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
    Ok(resp)
}
