//! SMART v2 restrictions on writing scopes (`user/Observation.cu?category=…|laboratory`):
//! a write is allowed when the resource it changes, as it was and as it becomes,
//! matches the restriction of a scope granting that kind of write. The restrictions
//! are the reading ones' SQL (`policy::restrictions`) evaluated on the stored row, in
//! the write's transaction, so a refused write leaves nothing behind.

use super::Access;
use super::restrictions::of_permission;
use crate::auth::scopes::{C, D, U};
use crate::error::{Error, Result};
use crate::service::write::Written;
use crate::store::Tx;
use crate::store::sql::{Kind, SqlQuery, fetch};

/// After a create, update or patch: the version written must be within the scopes.
pub async fn check_written(access: &Access, tx: &mut Tx, w: &Written) -> Result<()> {
    let need = if w.created { Need::Create } else { Need::Update };
    check(access, tx, need, &w.res_type, &w.id).await
}

/// Which letter of a scope a write needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Create,
    Update,
    Delete,
}

/// Whether `res_type/id` as stored now is within the caller's scopes for `need`
/// (before an update or delete: the resource as it is; after a create or update: the
/// resource as written). Callers without restricted writing scopes pass at once.
pub async fn check(access: &Access, tx: &mut Tx, need: Need, res_type: &str, id: &str) -> Result<()> {
    let Some(p) = access.principal() else {
        return Ok(());
    };
    let perms = match need {
        Need::Create => C,
        Need::Update => U,
        Need::Delete => D,
    };
    // Only scopes that carry a restriction narrow writes; the edge checked the letter.
    if !p
        .scopes
        .resources
        .iter()
        .any(|r| r.perms & perms != 0 && !r.restriction.is_empty())
    {
        return Ok(());
    }
    let Some(r) = of_permission(p, perms, access.now) else {
        return Ok(());
    };
    let mut q = SqlQuery::default();
    let t = q.text(res_type);
    let i = q.text(id);
    let cond = r.condition(&mut q, "r");
    q.sql = format!("SELECT r.pk FROM resources r WHERE r.res_type = {t} AND r.res_id = {i} AND {cond}");
    let exists_as_limited = !fetch(tx, &q, &[Kind::I64]).await?.is_empty();
    if exists_as_limited {
        return Ok(());
    }
    // An update of an id that does not exist yet is a create: nothing to match before.
    if need != Need::Create && crate::store::resources::current(tx, res_type, id).await?.is_none() {
        return Ok(());
    }
    Err(Error::Forbidden(format!(
        "The access token's scopes do not allow this {} of {res_type}/{id}: it is outside their restrictions",
        match need {
            Need::Create => "create",
            Need::Update => "update",
            Need::Delete => "delete",
        }
    )))
}
