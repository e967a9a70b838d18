//! User accounts: activation, sign-in checks and who an account may act for (policy
//! "Accounts" and R6). The FHIR resources behind an account (Patient, RelatedPerson,
//! Practitioner) are read from the store at each sign-in, so a change in the record
//! (a birthday, an ended mandate) applies at the next sign-in.

use serde_json::{Value, json};
use sqlx::Row;
use time::{Date, Month, OffsetDateTime};

use super::codes::{self, Kind};
use super::i18n::{Lang, t};
use super::sender::Message;
use crate::error::Error;
use crate::on_conn;
use crate::state::AppState;
use crate::store::Store;

pub const SELF_ACCESS_AGE: i32 = 14;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Invited,
    Active,
    Deactivated,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Invited => "invited",
            Status::Active => "active",
            Status::Deactivated => "deactivated",
        }
    }
    fn parse(s: &str) -> Status {
        match s {
            "active" => Status::Active,
            "deactivated" => Status::Deactivated,
            _ => Status::Invited,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Account {
    pub id: String,
    pub fhir_user: String,
    /// Further RelatedPersons of the same person (one per represented patient).
    pub links: Vec<String>,
    pub username: Option<String>,
    password_hash: Option<String>,
    pub contact: String,
    pub lang: Lang,
    pub status: Status,
    pub failed_attempts: i64,
    pub locked: bool,
}

impl Account {
    pub fn check_password(&self, password: &str) -> bool {
        match &self.password_hash {
            Some(h) => super::passwords::verify(password, h),
            None => {
                super::passwords::verify_dummy(password);
                false
            }
        }
    }
}

const COLUMNS: &str = "id, fhir_user, links, username, password_hash, contact, lang, status, failed_attempts, locked";

fn from_row<R: Row>(r: &R) -> Account
where
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<String>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> bool: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    usize: sqlx::ColumnIndex<R>,
{
    let links: String = r.get(2);
    let lang: String = r.get(6);
    let status: String = r.get(7);
    Account {
        id: r.get(0),
        fhir_user: r.get(1),
        links: serde_json::from_str(&links).unwrap_or_default(),
        username: r.get(3),
        password_hash: r.get(4),
        contact: r.get(5),
        lang: Lang::parse(&lang),
        status: Status::parse(&status),
        failed_attempts: r.get(8),
        locked: r.get(9),
    }
}

async fn find(store: &Store, column: &'static str, value: &str) -> Result<Option<Account>, Error> {
    let sql = format!("SELECT {COLUMNS} FROM auth_accounts WHERE {column} = $1");
    let mut tx = store.reader().await?;
    let acc = on_conn!(&mut tx, |c| sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
        .bind(value)
        .fetch_optional(c)
        .await?
        .map(|r| from_row(&r)));
    Ok(acc)
}

pub async fn by_id(store: &Store, id: &str) -> Result<Option<Account>, Error> {
    find(store, "id", id).await
}

pub async fn by_username(store: &Store, username: &str) -> Result<Option<Account>, Error> {
    find(store, "username", &username.trim().to_lowercase()).await
}

pub async fn by_fhir_user(store: &Store, fhir_user: &str) -> Result<Option<Account>, Error> {
    find(store, "fhir_user", fhir_user).await
}

pub async fn list(store: &Store) -> Result<Vec<Account>, Error> {
    let sql = format!("SELECT {COLUMNS} FROM auth_accounts ORDER BY fhir_user");
    let mut tx = store.reader().await?;
    let all = on_conn!(&mut tx, |c| sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
        .fetch_all(c)
        .await?
        .iter()
        .map(from_row)
        .collect::<Vec<_>>());
    Ok(all)
}

/// Reads a current resource's JSON (`Patient/123`).
pub async fn read_resource(store: &Store, reference: &str) -> Result<Option<Value>, Error> {
    let Some((ty, id)) = reference.split_once('/') else {
        return Ok(None);
    };
    let mut tx = store.reader().await?;
    let v = crate::store::resources::read_current(&mut tx, ty, id).await?;
    Ok(v.and_then(|v| v.content).and_then(|c| serde_json::from_slice(&c).ok()))
}

/// Where messages go when none is given: the resource's first e-mail, else its first
/// phone number.
fn contact_of(resource: &Value) -> Option<String> {
    let telecom = resource["telecom"].as_array()?;
    for system in ["email", "sms", "phone"] {
        if let Some(v) = telecom
            .iter()
            .find(|t| t["system"] == system)
            .and_then(|t| t["value"].as_str())
        {
            return Some(v.to_string());
        }
    }
    None
}

/// The result of `carnet account invite`.
#[derive(Debug)]
pub struct Invitation {
    pub account_id: String,
    pub activation_code: String,
    pub contact: String,
}

/// Creates (or re-invites) the account of a Patient, RelatedPerson or Practitioner and
/// sends a new activation code; the previous one stops working.
pub async fn invite(
    state: &AppState,
    fhir_user: &str,
    links: &[String],
    contact: Option<&str>,
    lang: Lang,
) -> Result<Invitation, Error> {
    let kind = fhir_user.split('/').next().unwrap_or("");
    if !matches!(kind, "Patient" | "RelatedPerson" | "Practitioner") || fhir_user.split('/').count() != 2 {
        return Err(Error::invalid(
            "value",
            "--fhir-user must be Patient/<id>, RelatedPerson/<id> or Practitioner/<id>",
        ));
    }
    for l in links {
        if !l.starts_with("RelatedPerson/") || kind != "RelatedPerson" {
            return Err(Error::invalid(
                "value",
                "only a RelatedPerson account can link more RelatedPersons",
            ));
        }
        if read_resource(state.store(), l).await?.is_none() {
            return Err(Error::NotFound(format!("{l} does not exist")));
        }
    }
    let Some(resource) = read_resource(state.store(), fhir_user).await? else {
        return Err(Error::NotFound(format!("{fhir_user} does not exist")));
    };
    let contact = contact
        .map(str::to_string)
        .or_else(|| contact_of(&resource))
        .unwrap_or_else(|| fhir_user.to_string());
    let now = state.now();
    let new_id = uuid::Uuid::new_v4().to_string();
    let mut tx = state.store().begin_write().await?;
    on_conn!(&mut tx, |c| sqlx::query(
        "INSERT INTO auth_accounts (id, fhir_user, links, contact, lang, status, created_at) \
         VALUES ($1, $2, $3, $4, $5, 'invited', $6) ON CONFLICT (fhir_user) DO NOTHING"
    )
    .bind(&new_id)
    .bind(fhir_user)
    .bind(json!(links).to_string())
    .bind(&contact)
    .bind(lang.code())
    .bind(now)
    .execute(c)
    .await?
    .rows_affected());
    if !links.is_empty() {
        on_conn!(&mut tx, |c| sqlx::query(
            "UPDATE auth_accounts SET links = $1 WHERE fhir_user = $2"
        )
        .bind(json!(links).to_string())
        .bind(fhir_user)
        .execute(c)
        .await?
        .rows_affected());
    }
    tx.commit().await?;
    let account = by_fhir_user(state.store(), fhir_user)
        .await?
        .ok_or_else(|| Error::Internal("account vanished after insert".into()))?;
    if account.status == Status::Active {
        return Err(Error::Conflict(format!("{fhir_user} already has an active account")));
    }
    let code = codes::activation_code()?;
    codes::issue(
        state.store(),
        Kind::Activation,
        &code,
        &account.id,
        &json!({}),
        super::ACTIVATION_CODE_MICROS,
        now,
        true,
    )
    .await?;
    state.auth().sender.send(&Message {
        to: account.contact.clone(),
        subject: t(lang, "mail.activation.subject").to_string(),
        body: t(lang, "mail.activation.body").replace("{code}", &code),
        code: Some(code.clone()),
    })?;
    Ok(Invitation {
        account_id: account.id,
        activation_code: code,
        contact: account.contact,
    })
}

/// Why an account may not be used for patient-facing access now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    UnderAge,
    NoPatient,
}

impl Refusal {
    pub fn text(self, lang: Lang) -> &'static str {
        match self {
            Refusal::UnderAge => t(lang, "err.age"),
            Refusal::NoPatient => t(lang, "err.no_patient"),
        }
    }
}

/// One patient a user may act for, and the `fhirUser` to put in the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Represented {
    pub patient: String,
    pub fhir_user: String,
    pub display: String,
}

/// The UTC date of an instant (epoch µs).
pub fn today(now: i64) -> Date {
    OffsetDateTime::from_unix_timestamp(now.div_euclid(1_000_000))
        .map(|d| d.date())
        .unwrap_or(Date::MIN)
}

/// A FHIR date's earliest and latest possible days (`1980`, `1980-02`, `1980-02-29`).
fn date_bounds(text: &str) -> Option<(Date, Date)> {
    let mut parts = text.split('-');
    let y: i32 = parts.next()?.parse().ok()?;
    let m: Option<u8> = parts.next().map(|m| m.parse().ok()).unwrap_or(None);
    let d: Option<u8> = parts
        .next()
        .map(|d| d.get(..2).unwrap_or(d).parse().ok())
        .unwrap_or(None);
    match (m, d) {
        (Some(m), Some(d)) => {
            let date = Date::from_calendar_date(y, Month::try_from(m).ok()?, d).ok()?;
            Some((date, date))
        }
        (Some(m), None) => {
            let month = Month::try_from(m).ok()?;
            let first = Date::from_calendar_date(y, month, 1).ok()?;
            let last = Date::from_calendar_date(y, month, month.length(y)).ok()?;
            Some((first, last))
        }
        _ => Some((
            Date::from_calendar_date(y, Month::January, 1).ok()?,
            Date::from_calendar_date(y, Month::December, 31).ok()?,
        )),
    }
}

/// The day someone born on `birth` turns `years` (29 February → 1 March).
fn anniversary(birth: Date, years: i32) -> Option<Date> {
    let y = birth.year() + years;
    Date::from_calendar_date(y, birth.month(), birth.day())
        .ok()
        .or_else(|| Date::from_calendar_date(y, Month::March, 1).ok())
}

/// Has the patient surely turned 14 today? A partial or missing birth date counts
/// against self-access (the latest possible birthday is used).
pub fn has_self_access_age(patient: &Value, today: Date) -> bool {
    let Some((_, latest)) = patient["birthDate"].as_str().and_then(date_bounds) else {
        return false;
    };
    anniversary(latest, SELF_ACCESS_AGE).is_some_and(|d| today >= d)
}

/// Is the child surely under 14 today (the earliest possible birthday is used)?
fn is_surely_under_age(patient: &Value, today: Date) -> bool {
    let Some((earliest, _)) = patient["birthDate"].as_str().and_then(date_bounds) else {
        return false;
    };
    anniversary(earliest, SELF_ACCESS_AGE).is_some_and(|d| today < d)
}

const PARENT_CODES: &[&str] = &["PRN", "MTH", "FTH", "GUARD"];
const MANDATARY_CODES: &[&str] = &["POWATT", "HPOWATT", "DPOWATT"];

fn relationship_codes(rp: &Value) -> Vec<String> {
    rp["relationship"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|cc| cc["coding"].as_array().cloned().unwrap_or_default())
        .filter_map(|c| c["code"].as_str().map(str::to_string))
        .collect()
}

fn within_period(rp: &Value, today: Date) -> bool {
    let period = &rp["period"];
    let start_ok = period["start"]
        .as_str()
        .and_then(date_bounds)
        .is_none_or(|(s, _)| today >= s);
    let end_ok = period["end"]
        .as_str()
        .and_then(date_bounds)
        .is_none_or(|(_, e)| today <= e);
    start_ok && end_ok
}

/// R6 for one RelatedPerson: the patient it gives access to today, if any.
async fn represented_by(store: &Store, rp_ref: &str, today: Date) -> Result<Option<Represented>, Error> {
    let Some(rp) = read_resource(store, rp_ref).await? else {
        return Ok(None);
    };
    if rp["active"] == Value::Bool(false) {
        return Ok(None);
    }
    let Some(patient_ref) = rp["patient"]["reference"].as_str() else {
        return Ok(None);
    };
    let patient_ref = patient_ref.rsplit('/').take(2).collect::<Vec<_>>();
    let [patient_id, "Patient"] = patient_ref.as_slice() else {
        return Ok(None);
    };
    let Some(patient) = read_resource(store, &format!("Patient/{patient_id}")).await? else {
        return Ok(None);
    };
    let codes = relationship_codes(&rp);
    let parent = codes.iter().any(|c| PARENT_CODES.contains(&c.as_str()));
    let mandatary = codes.iter().any(|c| MANDATARY_CODES.contains(&c.as_str()));
    let ok = (parent && is_surely_under_age(&patient, today)) || (mandatary && within_period(&rp, today));
    if !ok {
        return Ok(None);
    }
    Ok(Some(Represented {
        patient: patient_id.to_string(),
        fhir_user: rp_ref.to_string(),
        display: display_name(&patient),
    }))
}

fn display_name(patient: &Value) -> String {
    let name = &patient["name"][0];
    let given = name["given"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect::<Vec<_>>()
        .join(" ");
    let family = name["family"].as_str().unwrap_or("");
    let full = format!("{given} {family}").trim().to_string();
    if full.is_empty() {
        patient["id"].as_str().unwrap_or("").to_string()
    } else {
        full
    }
}

/// Whom this account may act for today (patient-facing accounts), or why not.
/// A practitioner gets an empty list.
pub async fn represented(
    store: &Store,
    account: &Account,
    now: i64,
) -> Result<Result<Vec<Represented>, Refusal>, Error> {
    let today = today(now);
    if let Some(id) = account.fhir_user.strip_prefix("Patient/") {
        let Some(patient) = read_resource(store, &account.fhir_user).await? else {
            return Ok(Err(Refusal::NoPatient));
        };
        if patient["active"] == Value::Bool(false) {
            return Ok(Err(Refusal::NoPatient));
        }
        if !has_self_access_age(&patient, today) {
            return Ok(Err(Refusal::UnderAge));
        }
        return Ok(Ok(vec![Represented {
            patient: id.to_string(),
            fhir_user: account.fhir_user.clone(),
            display: display_name(&patient),
        }]));
    }
    if account.fhir_user.starts_with("RelatedPerson/") {
        let mut out = Vec::new();
        for rp in std::iter::once(&account.fhir_user).chain(account.links.iter()) {
            if let Some(r) = represented_by(store, rp, today).await?
                && !out.iter().any(|o: &Represented| o.patient == r.patient)
            {
                out.push(r);
            }
        }
        return Ok(if out.is_empty() {
            Err(Refusal::NoPatient)
        } else {
            Ok(out)
        });
    }
    Ok(Ok(Vec::new()))
}

pub fn is_patient_facing(account: &Account) -> bool {
    account.fhir_user.starts_with("Patient/") || account.fhir_user.starts_with("RelatedPerson/")
}

#[derive(Debug, PartialEq, Eq)]
pub enum ActivationError {
    BadCode,
    UsernameTaken,
    WeakPassword,
    Refused(Refusal),
}

/// Redeems an activation code: sets the username and password, the account becomes
/// active. A patient under 14 cannot activate self-access.
pub async fn activate(
    state: &AppState,
    activation_code: &str,
    username: &str,
    password: &str,
) -> Result<Result<Account, ActivationError>, Error> {
    let username = username.trim().to_lowercase();
    if password.chars().count() < super::passwords::MIN_LENGTH {
        return Ok(Err(ActivationError::WeakPassword));
    }
    if username.is_empty() || username.len() > 100 {
        return Ok(Err(ActivationError::BadCode));
    }
    let now = state.now();
    // Refusals are checked before the code is spent, so a refused patient can retry
    // after their birthday with the same code (if still valid).
    let code = activation_code.trim().to_uppercase();
    let Some(account_id) = peek_activation(state.store(), &code, now).await? else {
        return Ok(Err(ActivationError::BadCode));
    };
    let Some(account) = by_id(state.store(), &account_id).await? else {
        return Ok(Err(ActivationError::BadCode));
    };
    if account.status != Status::Invited {
        return Ok(Err(ActivationError::BadCode));
    }
    if is_patient_facing(&account)
        && let Err(r) = represented(state.store(), &account, now).await?
    {
        return Ok(Err(ActivationError::Refused(r)));
    }
    if by_username(state.store(), &username).await?.is_some() {
        return Ok(Err(ActivationError::UsernameTaken));
    }
    let hash = super::passwords::hash(password)?;
    match codes::redeem(state.store(), Kind::Activation, &code, "", now).await? {
        codes::Redeemed::Ok { subject, .. } if subject == account.id => {}
        _ => return Ok(Err(ActivationError::BadCode)),
    }
    let mut tx = state.store().begin_write().await?;
    let res = on_conn!(&mut tx, |c| sqlx::query(
        "UPDATE auth_accounts SET username = $1, password_hash = $2, status = $3, failed_attempts = 0 WHERE id = $4"
    )
    .bind(&username)
    .bind(&hash)
    .bind(Status::Active.as_str())
    .bind(&account.id)
    .execute(c)
    .await
    .map(|r| r.rows_affected()));
    match res.map_err(crate::store::StoreError::from) {
        Ok(_) => tx.commit().await?,
        Err(e) if e.is_conflict() => return Ok(Err(ActivationError::UsernameTaken)),
        Err(e) => return Err(e.into()),
    }
    Ok(by_id(state.store(), &account.id).await?.ok_or(ActivationError::BadCode))
}

async fn peek_activation(store: &Store, code: &str, now: i64) -> Result<Option<String>, Error> {
    let mut tx = store.reader().await?;
    let subject = on_conn!(&mut tx, |c| {
        sqlx::query(
        "SELECT subject FROM auth_codes WHERE code_hash = $1 AND kind = 'activation' AND used_at IS NULL AND expires_at > $2"
    )
    .bind(super::hash_secret(code))
    .bind(now)
    .fetch_optional(c)
    .await?
    .map(|r| r.get::<String, _>(0))
    });
    Ok(subject)
}

pub async fn set_password(store: &Store, account_id: &str, password: &str) -> Result<(), Error> {
    let hash = super::passwords::hash(password)?;
    let mut tx = store.begin_write().await?;
    on_conn!(&mut tx, |c| sqlx::query(
        "UPDATE auth_accounts SET password_hash = $1, failed_attempts = 0 WHERE id = $2"
    )
    .bind(&hash)
    .bind(account_id)
    .execute(c)
    .await?
    .rows_affected());
    tx.commit().await?;
    Ok(())
}

pub async fn deactivate(state: &AppState, account: &Account) -> Result<(), Error> {
    let mut tx = state.store().begin_write().await?;
    on_conn!(&mut tx, |c| sqlx::query(
        "UPDATE auth_accounts SET status = $1 WHERE id = $2"
    )
    .bind(Status::Deactivated.as_str())
    .bind(&account.id)
    .execute(c)
    .await?
    .rows_affected());
    tx.commit().await?;
    super::sessions::revoke_account(state.store(), &account.id, state.now()).await?;
    state.auth().cache.forget_subject(&account.id);
    Ok(())
}
