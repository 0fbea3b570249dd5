//! The running service: the state every listener shares ([`gateway`]), starting and
//! stopping the listeners together ([`serve`]), and hot reload of the policy ([`reload`]).

pub mod gateway;
pub mod reload;
pub mod serve;
