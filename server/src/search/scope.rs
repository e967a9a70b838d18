//! Who may see what: the conditions an access policy adds to every search query.

use super::sql::SqlQuery;

/// The caller's access scope. Empty for now (everything is visible); access policies
/// (patient compartment of a SMART launch, consent) will live here.
///
/// The query builder calls [`AccessScope::condition`] for every resource a search can
/// reach: the main query (so the condition applies before `LIMIT` and before counts),
/// each chain target, each `_has` source, and `_include` / `_revinclude` fetches. A
/// policy therefore only has to express itself as a condition on one `resources` row.
#[derive(Debug, Clone, Default)]
pub struct AccessScope {}

impl AccessScope {
    /// Everything is visible.
    pub fn unrestricted() -> AccessScope {
        AccessScope {}
    }

    /// A condition on the `resources` row aliased `alias` (columns `pk`, `res_type`,
    /// `res_id`, `last_updated`, `deleted`), binding its values into `q`; `None` when
    /// the scope does not restrict. Conditions may use subqueries over the index
    /// tables, e.g. `alias.pk IN (SELECT pk FROM idx_reference WHERE …)` for a
    /// compartment.
    pub fn condition(&self, _q: &mut SqlQuery, _alias: &str) -> Option<String> {
        None
    }
}
