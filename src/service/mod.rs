//! The running service, below the channels that use it: the checked snapshot every decision
//! is made with ([`snapshot`]), the state every listener shares ([`gateway`]), what only the
//! running gateway knows for the admin page ([`activity`]), hot reload ([`reload`]), and one
//! gateway per state directory ([`state`]). Starting and stopping the listeners together is
//! [`crate::serve`], above the channels.

pub mod activity;
pub mod gateway;
pub mod reload;
pub mod snapshot;
pub mod state;
