//! R6 at request time: a token says who the user is, the stored Patient and
//! RelatedPerson say whether that still grants access today (a token outlives a
//! birthday or the end of a mandate by at most its lifetime, but it is checked anyway).

use serde_json::Value;
use time::{Date, Month};

use crate::auth::accounts::today;
use crate::auth::principal::Actor;
use crate::error::Result;
use crate::service::read;
use crate::state::AppState;

const PARENTS: &[&str] = &["PRN", "MTH", "FTH", "GUARD"];
const MANDATARIES: &[&str] = &["POWATT", "HPOWATT", "DPOWATT"];

/// Whether the actor's patient-facing access holds today; providers always pass here.
pub async fn allowed(state: &AppState, actor: &Actor, now: i64) -> Result<bool> {
    let settings = &state.config().policy;
    let day = today(now);
    match actor {
        Actor::Patient { id } => {
            let Some(p) = stored(state, "Patient", id).await? else {
                return Ok(false);
            };
            Ok(p["active"] != Value::Bool(false) && reached(&p, settings.self_access_age, day))
        }
        Actor::Representative {
            related_person,
            patient,
        } => {
            let Some(rp) = stored(state, "RelatedPerson", related_person).await? else {
                return Ok(false);
            };
            if rp["active"] == Value::Bool(false) {
                return Ok(false);
            }
            let target = rp["patient"]["reference"].as_str().unwrap_or_default();
            if target.rsplit('/').next() != Some(patient.as_str()) || !target.contains("Patient/") {
                return Ok(false);
            }
            let Some(p) = stored(state, "Patient", patient).await? else {
                return Ok(false);
            };
            let codes: Vec<&str> = rp["relationship"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|cc| cc["coding"].as_array().into_iter().flatten())
                .filter_map(|c| c["code"].as_str())
                .collect();
            let parent = codes.iter().any(|c| PARENTS.contains(c));
            let mandatary = codes.iter().any(|c| MANDATARIES.contains(c));
            let under = bounds(p["birthDate"].as_str().unwrap_or_default())
                .and_then(|(earliest, _)| anniversary(earliest, settings.parent_access_until_age))
                .is_some_and(|d| day < d);
            Ok((parent && under) || (mandatary && within_period(&rp, day)))
        }
        _ => Ok(true),
    }
}

async fn stored(state: &AppState, t: &str, id: &str) -> Result<Option<Value>> {
    let mut conn = state.store().lookup().await?;
    match read::read(&mut conn, t, id).await {
        Ok(v) => Ok(v.content.and_then(|c| serde_json::from_slice(&c).ok())),
        Err(crate::error::Error::NotFound(_) | crate::error::Error::Gone(_) | crate::error::Error::Invalid(_)) => {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Has the patient surely reached `age` today (latest possible birthday of a partial date)?
fn reached(p: &Value, age: i32, day: Date) -> bool {
    bounds(p["birthDate"].as_str().unwrap_or_default())
        .and_then(|(_, latest)| anniversary(latest, age))
        .is_some_and(|d| day >= d)
}

fn within_period(rp: &Value, day: Date) -> bool {
    let start = rp["period"]["start"]
        .as_str()
        .and_then(bounds)
        .is_none_or(|(s, _)| day >= s);
    let end = rp["period"]["end"]
        .as_str()
        .and_then(bounds)
        .is_none_or(|(_, e)| day <= e);
    start && end
}

/// Earliest and latest day a FHIR date or dateTime may mean.
fn bounds(text: &str) -> Option<(Date, Date)> {
    let mut parts = text.split('-');
    let y: i32 = parts.next()?.parse().ok()?;
    let m: Option<u8> = parts.next().and_then(|m| m.parse().ok());
    let d: Option<u8> = parts.next().and_then(|d| d.get(..2).unwrap_or(d).parse().ok());
    match (m, d) {
        (Some(m), Some(d)) => {
            let date = Date::from_calendar_date(y, Month::try_from(m).ok()?, d).ok()?;
            Some((date, date))
        }
        (Some(m), None) => {
            let month = Month::try_from(m).ok()?;
            Some((
                Date::from_calendar_date(y, month, 1).ok()?,
                Date::from_calendar_date(y, month, month.length(y)).ok()?,
            ))
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
