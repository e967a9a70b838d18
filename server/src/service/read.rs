//! read and vread.

use super::ids;
use crate::error::{Error, Result};
use crate::store::{StoredVersion, Tx, resources};

/// The current version; 404 when the resource never existed, 410 when it was deleted.
pub async fn read(tx: &mut Tx, res_type: &str, id: &str) -> Result<StoredVersion> {
    ids::check_id(id)?;
    match resources::read_current(tx, res_type, id).await? {
        None => Err(Error::NotFound(format!("{res_type}/{id} not found"))),
        Some(v) if v.content.is_none() => Err(Error::Gone(format!("{res_type}/{id} was deleted"))),
        Some(v) => Ok(v),
    }
}

pub async fn vread(tx: &mut Tx, res_type: &str, id: &str, version: &str) -> Result<StoredVersion> {
    ids::check_id(id)?;
    let Ok(n) = version.parse::<i64>() else {
        return Err(Error::NotFound(format!(
            "{res_type}/{id} has no version '{}'",
            ids::truncate(version, 40)
        )));
    };
    match resources::read_version(tx, res_type, id, n).await? {
        None => Err(Error::NotFound(format!("{res_type}/{id} has no version {n}"))),
        Some(v) if v.content.is_none() => Err(Error::Gone(format!("{res_type}/{id} version {n} is a deletion"))),
        Some(v) => Ok(v),
    }
}
