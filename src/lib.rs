//! markgate: a secure exchange gateway that enforces protective-marking handling rules on
//! the mail and HTTP a police force sends to its partners.
//!
//! # Flow
//!
//! Every message, request or bundle takes one road:
//!
//! ```text
//! channel (smtp/, http/, cli bundle seal)
//!   -> message   parse raw bytes (headers, MIME)
//!   -> marking   find and settle the protective marking
//!   -> facts     the decision's input: marking, recipients classified by destination,
//!                declarations (purpose, legal basis, consent, ISA) read once
//!   -> decision  pure: decide(&MessageFacts, &Policy) -> Decision
//!   -> transform statement, TLS requirement, encryption into a bundle
//!   -> record    what the decision saw and what the channel then did, durably
//!   -> deliver   queue and relay (smtp/), upstream (http/), the bundle file (cli)
//! ```
//!
//! # Layout
//!
//! - the flow: [`message`] (parse, headers, MIME), [`marking`], [`address`] (domain and
//!   host syntax) and [`destination`] (destination classes and partners), [`facts`] (the
//!   one builder of the decision's input), [`decision`] (rules, ISA, reasons, built-in rule
//!   ids), [`transform`], [`bundle`] (the sealed format), [`record`] (the record, its one
//!   builder, the hash-chained store, reports);
//! - the channels: [`smtp`] (inbound sessions, spool and queue, outbound delivery; refusals
//!   become replies in `smtp::error`) and [`http`] (forward and reverse proxy; failures
//!   become responses in `http::error`);
//! - around them: [`policy`] (the handling policy, loaded and validated with located
//!   errors), [`policyops`] (matrix, policy tests and simulation), [`service`] (the checked
//!   snapshot every decision is made with, the running gateway, hot reload), [`admin`]
//!   (admin page and metrics), [`config`], [`certs`] (keys and TLS), and [`serve`] (every
//!   listener started on one gateway and stopped together).
//!
//! # Layers
//!
//! No two top-level modules use each other, directly or around a loop; each uses only
//! modules below it (`tests/layering.rs` holds the order and fails on a cycle):
//!
//! ```text
//! address, message            leaves
//! config, certs               settings and key material
//! marking, policy             the marking scheme, then the policy compiled against it
//! destination, facts, decision
//! record, bundle, transform   evidence, the sealed format, what a rule requires
//! policyops                   policy tools over decisions and records
//! service                     the running gateway every channel shares
//! smtp, http, admin           channels and the admin listener
//! serve                       starts them all
//! ```
#![forbid(unsafe_code)]

// The flow (its order is in the doc above).
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
pub mod serve;
pub mod service;
