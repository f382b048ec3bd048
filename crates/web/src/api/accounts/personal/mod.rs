//! Personal Telegram accounts, admins only: the shared steps of a login ([`common`]), the phone-code flow with
//! resend and cloud password ([`login`]), the QR flow ([`qr`]) and the life cycle: start, stop, restart, removal
//! ([`lifecycle`]). Commands reach the instance connected to an account through the event bus; the admin's intent
//! (`enabled`) is in the database, so a stop holds even if a command is missed.

pub mod common;
pub mod lifecycle;
pub mod login;
pub mod qr;
