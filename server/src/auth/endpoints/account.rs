//! Account pages: activation (with an `A-000000` code), password reset (with a 6-digit
//! code) and self-deactivation. Failures count toward the lockout.

use std::collections::HashMap;

use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::auth::accounts::{self, ActivationError, Status};
use crate::auth::codes::{self, Kind, Redeemed};
use crate::auth::i18n::{Lang, t};
use crate::auth::lockout;
use crate::auth::pages::{self, error_text, field, form, submit};
use crate::auth::sender::Message;
use crate::error::Error;
use crate::state::AppState;

type Fields = HashMap<String, String>;

fn get<'a>(f: &'a Fields, k: &str) -> &'a str {
    f.get(k).map(String::as_str).unwrap_or("")
}

fn activate_form(lang: Lang, error: &str, status: StatusCode) -> Response {
    let inner = format!(
        "{}{}{}{}",
        field(lang, "activation_code", "field.activation_code", "text", "off"),
        field(lang, "username", "field.username", "text", "username"),
        field(lang, "password", "field.password", "password", "new-password"),
        submit(lang, "button.activate", "activate")
    );
    pages::page(
        status,
        lang,
        "title.activate",
        &format!("{}{}", error_text(error), form("activate", &inner)),
    )
}

pub async fn activate_page(headers: HeaderMap) -> Response {
    activate_form(Lang::from_headers(&headers), "", StatusCode::OK)
}

pub async fn activate(State(state): State<AppState>, headers: HeaderMap, Form(f): Form<Fields>) -> Response {
    let lang = Lang::from_headers(&headers);
    match accounts::activate(
        &state,
        get(&f, "activation_code"),
        get(&f, "username"),
        get(&f, "password"),
    )
    .await
    {
        Ok(Ok(_)) => pages::page(
            StatusCode::OK,
            lang,
            "title.done",
            &format!("<p>{}</p>", t(lang, "done.activated")),
        ),
        Ok(Err(e)) => {
            let (key, status) = match e {
                ActivationError::BadCode => (t(lang, "err.activation"), StatusCode::BAD_REQUEST),
                ActivationError::UsernameTaken => (t(lang, "err.username_taken"), StatusCode::CONFLICT),
                ActivationError::WeakPassword => (t(lang, "err.password_weak"), StatusCode::BAD_REQUEST),
                ActivationError::Refused(r) => (r.text(lang), StatusCode::FORBIDDEN),
            };
            activate_form(lang, key, status)
        }
        Err(e) => e.into_response(),
    }
}

fn reset_form(lang: Lang, error: &str, status: StatusCode) -> Response {
    let ask = form(
        "reset",
        &format!(
            "<p>{}</p>{}{}",
            t(lang, "hint.reset"),
            field(lang, "username", "field.username", "text", "username"),
            submit(lang, "button.send_code", "send")
        ),
    );
    let set = form(
        "reset",
        &format!(
            "{}{}{}{}",
            field(lang, "username", "field.username", "text", "username"),
            field(lang, "code", "field.code", "text", "one-time-code"),
            field(lang, "password", "field.new_password", "password", "new-password"),
            submit(lang, "button.continue", "reset")
        ),
    );
    pages::page(status, lang, "title.reset", &format!("{}{ask}{set}", error_text(error)))
}

pub async fn reset_page(headers: HeaderMap) -> Response {
    reset_form(Lang::from_headers(&headers), "", StatusCode::OK)
}

/// Without `code`: sends a reset code (the answer does not tell whether the account
/// exists). With `code` and `password`: sets the new password.
pub async fn reset(State(state): State<AppState>, headers: HeaderMap, Form(f): Form<Fields>) -> Response {
    let lang = Lang::from_headers(&headers);
    match reset_inner(&state, lang, &f).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn reset_inner(state: &AppState, lang: Lang, f: &Fields) -> Result<Response, Error> {
    let account = accounts::by_username(state.store(), get(f, "username")).await?;
    if get(f, "code").is_empty() {
        if let Some(a) = account.filter(|a| a.status == Status::Active && !a.locked) {
            let code = codes::six_digits()?;
            codes::issue(
                state.store(),
                Kind::Reset,
                &code,
                &a.id,
                &json!({}),
                crate::auth::SIGNIN_CODE_MICROS,
                state.now(),
                true,
            )
            .await?;
            state.auth().sender.send(&Message {
                to: a.contact.clone(),
                subject: t(lang, "mail.reset.subject").to_string(),
                body: t(lang, "mail.reset.body").replace("{code}", &code),
                code: Some(code),
            })?;
        }
        return Ok(pages::page(
            StatusCode::OK,
            lang,
            "title.reset",
            &format!("<p>{}</p>", t(lang, "done.code_sent")),
        ));
    }
    let Some(account) = account.filter(|a| a.status == Status::Active) else {
        return Ok(reset_form(lang, t(lang, "err.code"), StatusCode::BAD_REQUEST));
    };
    if account.locked {
        return Ok(reset_form(lang, t(lang, "err.locked"), StatusCode::FORBIDDEN));
    }
    if get(f, "password").chars().count() < crate::auth::passwords::MIN_LENGTH {
        return Ok(reset_form(lang, t(lang, "err.password_weak"), StatusCode::BAD_REQUEST));
    }
    match codes::redeem(
        state.store(),
        Kind::Reset,
        get(f, "code").trim(),
        &account.id,
        state.now(),
    )
    .await?
    {
        Redeemed::Ok { .. } => {}
        _ => {
            let locked = lockout::record_failure(state.store(), &account.id).await?;
            let key = if locked { "err.locked" } else { "err.code" };
            return Ok(reset_form(lang, t(lang, key), StatusCode::BAD_REQUEST));
        }
    }
    accounts::set_password(state.store(), &account.id, get(f, "password")).await?;
    // A new password ends every session that the old one opened.
    crate::auth::sessions::revoke_account(state.store(), &account.id, state.now()).await?;
    state.auth().cache.forget_subject(&account.id);
    Ok(pages::page(
        StatusCode::OK,
        lang,
        "title.done",
        &format!("<p>{}</p>", t(lang, "done.reset")),
    ))
}

fn deactivate_form(lang: Lang, error: &str, status: StatusCode) -> Response {
    let inner = format!(
        "{}{}{}",
        field(lang, "username", "field.username", "text", "username"),
        field(lang, "password", "field.password", "password", "current-password"),
        submit(lang, "button.deactivate", "deactivate")
    );
    pages::page(
        status,
        lang,
        "title.deactivate",
        &format!("{}{}", error_text(error), form("deactivate", &inner)),
    )
}

pub async fn deactivate_page(headers: HeaderMap) -> Response {
    deactivate_form(Lang::from_headers(&headers), "", StatusCode::OK)
}

/// Self-deactivation: the user proves it with their password; every session ends.
pub async fn deactivate(State(state): State<AppState>, headers: HeaderMap, Form(f): Form<Fields>) -> Response {
    let lang = Lang::from_headers(&headers);
    let result = async {
        let Some(account) = accounts::by_username(state.store(), get(&f, "username")).await? else {
            crate::auth::passwords::verify_dummy(get(&f, "password"));
            return Ok(deactivate_form(
                lang,
                t(lang, "err.credentials"),
                StatusCode::UNAUTHORIZED,
            ));
        };
        if account.locked {
            return Ok(deactivate_form(lang, t(lang, "err.locked"), StatusCode::FORBIDDEN));
        }
        if account.status != Status::Active || !account.check_password(get(&f, "password")) {
            let locked = lockout::record_failure(state.store(), &account.id).await?;
            let key = if locked { "err.locked" } else { "err.credentials" };
            return Ok(deactivate_form(lang, t(lang, key), StatusCode::UNAUTHORIZED));
        }
        accounts::deactivate(&state, &account).await?;
        Ok::<_, Error>(pages::page(
            StatusCode::OK,
            lang,
            "title.done",
            &format!("<p>{}</p>", t(lang, "done.deactivated")),
        ))
    }
    .await;
    result.unwrap_or_else(|e| e.into_response())
}
