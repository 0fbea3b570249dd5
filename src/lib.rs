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
//!   -> decision  pure: decide(&MessageFacts, &Policy) -> Decision (allow, block, or held
//!                for an approver)
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
//!   ids), [`hold`] (disclosures held for an approver, urgent releases to review),
//!   [`transform`], [`bundle`] (the sealed format), [`record`] (the record, its one
//!   builder, the hash-chained store, reports);
//! - the channels: [`smtp`] (inbound sessions, spool and queue, outbound delivery; refusals
//!   become replies in `smtp::error`) and [`http`] (forward and reverse proxy; failures
//!   become responses in `http::error`);
//! - around them: [`policy`] (the handling policy, loaded and validated with located
//!   errors), [`policyops`] (matrix, policy tests and simulation), [`service`] (the checked
//!   snapshot every decision is made with, the running gateway, serve, hot reload),
//!   [`admin`] (admin page and metrics), [`config`], and [`certs`] (keys and TLS).
#![forbid(unsafe_code)]

// The flow (its order is in the doc above).
pub mod address;
pub mod bundle;
pub mod decision;
pub mod destination;
pub mod facts;
pub mod hold;
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
