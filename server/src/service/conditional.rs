//! Conditional interactions: the search criteria in `If-None-Exist` or a conditional
//! URL decide which resource a create, update or delete applies to.

use crate::error::{Error, Result};
use crate::search;
use crate::state::AppState;
use crate::store::Tx;

/// What the criteria matched.
#[derive(Debug, PartialEq, Eq)]
pub enum Matches {
    None,
    One(String),
    Many,
}

/// Resolves `criteria` (a query string such as `identifier=http://x|123`) against
/// `res_type`. Empty criteria are refused: they would match everything.
pub async fn resolve(state: &AppState, tx: &mut Tx, res_type: &str, criteria: &str) -> Result<Matches> {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(criteria.trim_start_matches('?').as_bytes())
        .into_owned()
        .filter(|(k, _)| !matches!(k.as_str(), "_format" | "_pretty"))
        .collect();
    if pairs.is_empty() {
        return Err(Error::PreconditionFailed(
            "A conditional interaction needs search criteria".to_string(),
        ));
    }
    let ids = search::find_ids(state, tx, res_type, &pairs, 2).await?;
    Ok(match ids.len() {
        0 => Matches::None,
        1 => ids.into_iter().next().map_or(Matches::None, Matches::One),
        _ => Matches::Many,
    })
}
