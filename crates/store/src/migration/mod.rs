//! Schema migrations: one set, rendered by SeaQuery for SQLite, MySQL/MariaDB and PostgreSQL.

mod columns;
mod m0001_initial;
mod m0002_bot_intake;
mod m0003_events;
mod m0004_personal_accounts;
mod m0005_spine;

use sea_orm_migration::prelude::*;

/// Every migration, oldest first.
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m0001_initial::Migration),
            Box::new(m0002_bot_intake::Migration),
            Box::new(m0003_events::Migration),
            Box::new(m0004_personal_accounts::Migration),
            Box::new(m0005_spine::Migration),
        ]
    }
}
