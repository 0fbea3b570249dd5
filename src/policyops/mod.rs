//! Policy operations: what security managers use to change the handling policy safely,
//! each running the same pure engine ([`crate::decision::decide`]) the gateway enforces
//! with, so what they show cannot drift from what happens.
//!
//! - [`matrix`]: the handling matrix (marking × destination) and the diff of two policies;
//! - [`test`]: the policy's own test cases (`policy/tests/*.toml`);
//! - [`simulate`]: recorded decisions replayed under a candidate policy.

pub mod matrix;
pub mod simulate;
pub mod test;
