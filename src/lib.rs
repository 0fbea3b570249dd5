//! markgate: a secure exchange gateway that enforces protective-marking handling rules on
//! the mail and HTTP a police force sends to its partners.
//!
//! # Layout
//!
//! The modules follow the data flow of one message or request:
//!
//! - listeners: [`smtp`] (inbound sessions, spool, queue, outbound delivery) and [`http`]
//!   (proxy and reverse proxy), started together by [`service::serve`] on one shared [`service::gateway`];
//! - parse: [`message`] turns raw bytes into a message;
//! - marking: [`marking`] finds and normalises every marking and settles on a class;
//! - destination: [`destination`] classifies each recipient domain and finds its partner;
//! - decision: [`decision`] is the pure engine, `decide(&MessageFacts, &Policy) -> Decision`;
//! - transform: [`bundle`] seals what must be encrypted into an age bundle;
//! - deliver: the gateways' outbound halves;
//! - record: [`record`] keeps every decision durably in a hash-chained store.
//!
//! Around them: [`policy`] (the handling policy, loaded and validated with located errors),
//! [`policyops`] (matrix, policy tests and simulation: what security managers use to change
//! the policy safely), [`service`] (the running gateway, serve, hot reload), [`admin`]
//! (admin page and metrics), [`config`], and [`certs`] (keys and TLS configuration).
#![forbid(unsafe_code)]

// The flow, in order.
pub mod address;
pub mod bundle;
pub mod decision;
pub mod destination;
pub mod facts;
pub mod marking;
pub mod message;
pub mod record;
pub mod transform;

// The channels.
pub mod http;
pub mod smtp;

// Around them.
pub mod admin;
pub mod certs;
pub mod config;
pub mod policy;
pub mod policyops;
pub mod service;
