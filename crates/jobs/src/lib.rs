//! The durable job runner: claims due jobs from the database, runs the handler registered for each kind,
//! retries failures with exponential backoff and jitter (or at the time a handler asks for), dead-letters jobs
//! that used up their attempts, and schedules periodic housekeeping.

pub mod backoff;
pub mod connected;
pub mod forward;
pub mod housekeeping;
pub mod media;
pub mod outbox;
pub mod polling;
pub mod read_sync;
pub mod runner;
pub mod supervisor;

pub use runner::{JobContext, JobError, JobHandler, Runner, RunnerSettings};
