//! Background work: the durable job runner ([`runner`]) with the handler of every job kind ([`handlers`]), the
//! personal accounts' channel over their live connections ([`personal_channel`]), long polling for bots
//! ([`polling`]) and the personal-account supervisor ([`supervisor`]). Everything reaches the database through
//! the core's use cases and ports.

pub mod backoff;
pub mod connected;
pub mod forward;
pub mod handlers;
pub mod personal_channel;
pub mod polling;
pub mod runner;
pub mod supervisor;

pub use runner::{JobHandler, JobOutcome, Runner, RunnerSettings};
