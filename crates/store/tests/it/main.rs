//! Integration tests of the store, each run on SQLite, MySQL/MariaDB and PostgreSQL.

mod jobs;
mod schema;
mod secrets;
mod support;
