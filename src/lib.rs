//! markgate library.
pub mod config;
pub mod decision;
pub mod destination;
pub mod marking;
pub mod message;
pub mod policy;
pub mod record;
