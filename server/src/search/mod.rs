//! Search: the index written with every version, and the SQL that queries it.

pub mod index;

use crate::error::{Error, Result};
use crate::state::AppState;
use crate::store::{Tx, resources};

/// Ids of up to `limit` live resources of `res_type` matching the criteria.
pub async fn find_ids(
    _state: &AppState,
    tx: &mut Tx,
    res_type: &str,
    pairs: &[(String, String)],
    limit: usize,
) -> Result<Vec<String>> {
    let mut ids: Option<Vec<String>> = None;
    for (name, value) in pairs {
        match name.as_str() {
            "_id" => {
                let mut found = Vec::new();
                for id in value.split(',') {
                    if let Some(cur) = resources::current(tx, res_type, id).await? {
                        if !cur.deleted {
                            found.push(id.to_string());
                        }
                    }
                }
                ids = Some(match ids {
                    None => found,
                    Some(prev) => prev.into_iter().filter(|i| found.contains(i)).collect(),
                });
            }
            other => {
                return Err(Error::invalid_at(
                    "not-supported",
                    other.to_string(),
                    format!("Search parameter '{other}' is not supported"),
                ));
            }
        }
    }
    let mut ids = ids.unwrap_or_default();
    ids.truncate(limit);
    Ok(ids)
}
