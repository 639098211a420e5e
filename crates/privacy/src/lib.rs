//! The privacy engine of logveil: key rings, keyed pseudonyms, network truncation, path and
//! referrer reduction, free-text scrubbing, user-agent classification, and the rules that
//! turn a parsed record into a privacy-safe row or drop it (proxy traffic, no consent).
//!
//! Nothing here prints; nothing here lets a raw identifier into an error message.

pub mod engine;
pub mod keys;
pub mod policy;
pub mod proxy_usage;
pub mod pseudonym;
pub mod scrub;
pub mod suppress;
#[cfg(test)]
mod testutil;
pub mod ua;
pub mod url;

pub use engine::{Engine, EngineConfig, Outcome, ProxyFacts};
pub use keys::{Algorithm, Epoch, Key, KeyError, KeyRing};
pub use proxy_usage::ProxyAggregator;
