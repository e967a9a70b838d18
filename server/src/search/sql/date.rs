//! Date comparisons between the stored closed range `[low, high]` and the query
//! value's range `[ql, qh]` (its precision), per R4 search 3.1.1.4.5:
//!
//! | prefix | stored range …                                                  |
//! |--------|-----------------------------------------------------------------|
//! | eq     | lies within the query range                                     |
//! | ne     | does not lie within it                                          |
//! | gt     | extends above it (`high > qh`)                                  |
//! | lt     | extends below it (`low < ql`)                                   |
//! | ge     | extends above it, or lies within it                             |
//! | le     | extends below it, or lies within it                             |
//! | sa     | starts after it (`low > qh`)                                    |
//! | eb     | ends before it (`high < ql`)                                    |
//! | ap     | overlaps the query range widened on both sides by 10 % of the   |
//! |        | distance between the query value and now (at least one day)     |

use carnet_search::{DateRange, Prefix};

use super::SqlQuery;

const DAY: i64 = 86_400_000_000;

pub fn cond(q: &mut SqlQuery, low: &str, high: &str, prefix: Prefix, r: DateRange, now: i64) -> String {
    let (ql, qh) = (r.low, r.high);
    match prefix {
        Prefix::Eq => format!("({low} >= {} AND {high} <= {})", q.int(ql), q.int(qh)),
        Prefix::Ne => format!("({low} < {} OR {high} > {})", q.int(ql), q.int(qh)),
        Prefix::Gt => format!("{high} > {}", q.int(qh)),
        Prefix::Lt => format!("{low} < {}", q.int(ql)),
        Prefix::Ge => format!(
            "({high} > {} OR ({low} >= {} AND {high} <= {}))",
            q.int(qh),
            q.int(ql),
            q.int(qh)
        ),
        Prefix::Le => format!(
            "({low} < {} OR ({low} >= {} AND {high} <= {}))",
            q.int(ql),
            q.int(ql),
            q.int(qh)
        ),
        Prefix::Sa => format!("{low} > {}", q.int(qh)),
        Prefix::Eb => format!("{high} < {}", q.int(ql)),
        Prefix::Ap => {
            let d = ap_margin(ql, now);
            format!(
                "({low} <= {} AND {high} >= {})",
                q.int(qh.saturating_add(d)),
                q.int(ql.saturating_sub(d))
            )
        }
    }
}

/// How far `ap` widens the query range on each side: 10 % of the distance between the
/// value and now, at least a day.
pub fn ap_margin(ql: i64, now: i64) -> i64 {
    (now.saturating_sub(ql)).saturating_abs().saturating_div(10).max(DAY)
}
