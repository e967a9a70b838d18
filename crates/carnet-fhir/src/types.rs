//! The issue type shared by every check: carnet-validate's, so structural issues and
//! rule or profile issues are one type from the checks to the OperationOutcome.

pub use carnet_validate::{Issue, Severity};
