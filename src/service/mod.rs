//! The running service: the checked snapshot every decision is made with ([`snapshot`]),
//! the state every listener shares ([`gateway`]), starting and stopping the listeners
//! together ([`serve`]), hot reload ([`reload`]), and one gateway per state directory
//! ([`state`]).

pub mod gateway;
pub mod reload;
pub mod serve;
pub mod snapshot;
pub mod state;
