//! Server-rendered HTML for the sign-in, activation, reset and deactivation pages:
//! plain forms, no script, every value escaped.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use super::i18n::{Lang, t};

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole page. Pages with secrets in flight are never cached, never framed.
pub fn page(status: StatusCode, lang: Lang, title_key: &str, body: &str) -> Response {
    let title = t(lang, title_key);
    let html = format!(
        "<!doctype html><html lang=\"{}\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" \
         content=\"width=device-width\"><title>{title} · Carnet</title></head><body><main><h1>{title}</h1>{body}</main></body></html>",
        lang.code()
    );
    let mut resp = (status, Html(html)).into_response();
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; form-action 'self'; frame-ancestors 'none'"),
    );
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    resp
}

pub fn error_text(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!("<p role=\"alert\">{}</p>", escape(message))
    }
}

pub fn hidden(name: &str, value: &str) -> String {
    format!("<input type=\"hidden\" name=\"{name}\" value=\"{}\">", escape(value))
}

pub fn field(lang: Lang, name: &str, label_key: &str, kind: &str, autocomplete: &str) -> String {
    format!(
        "<p><label for=\"{name}\">{}</label><br><input id=\"{name}\" name=\"{name}\" type=\"{kind}\" \
         autocomplete=\"{autocomplete}\" required></p>",
        t(lang, label_key)
    )
}

pub fn submit(lang: Lang, key: &str, name: &str) -> String {
    format!(
        "<p><button type=\"submit\" name=\"{name}\" value=\"1\">{}</button></p>",
        t(lang, key)
    )
}

/// A form posting to `action` with the given inner HTML.
pub fn form(action: &str, inner: &str) -> String {
    format!("<form method=\"post\" action=\"{}\">{inner}</form>", escape(action))
}
