//! Column and table shapes that differ per backend, so every migration writes them the same way.

use sea_orm::DatabaseBackend;
use sea_orm_migration::prelude::*;

/// Shapes columns and tables for one backend.
pub(crate) struct Columns(pub DatabaseBackend);

impl Columns {
    /// A `BIGINT` auto-increment primary key (`INTEGER PRIMARY KEY AUTOINCREMENT` on SQLite).
    pub fn id(&self, name: impl IntoIden) -> ColumnDef {
        ColumnDef::new(name)
            .big_integer()
            .not_null()
            .auto_increment()
            .primary_key()
            .take()
    }

    /// A UTC timestamp with microseconds: `timestamptz` on PostgreSQL, `DATETIME(6)` on MySQL (no 2038 limit and
    /// no session time-zone conversion), ISO text on SQLite.
    pub fn timestamp(&self, name: impl IntoIden) -> ColumnDef {
        let mut column = ColumnDef::new(name);
        match self.0 {
            DatabaseBackend::MySql => column.custom(Alias::new("DATETIME(6)")),
            _ => column.timestamp_with_time_zone(),
        };
        column
    }

    /// Text that may be large (sealed sessions, raw updates): `LONGTEXT` on MySQL, where `TEXT` stops at 64 KiB.
    pub fn long_text(&self, name: impl IntoIden) -> ColumnDef {
        let mut column = ColumnDef::new(name);
        match self.0 {
            DatabaseBackend::MySql => column.custom(Alias::new("LONGTEXT")),
            _ => column.text(),
        };
        column
    }

    /// A JSON document: `jsonb` on PostgreSQL, `JSON` on MySQL/MariaDB, text on SQLite.
    pub fn json(&self, name: impl IntoIden) -> ColumnDef {
        let mut column = ColumnDef::new(name);
        match self.0 {
            DatabaseBackend::Postgres => column.json_binary(),
            _ => column.json(),
        };
        column
    }

    /// A table on this backend: on MySQL, InnoDB with utf8mb4 and binary collation, so emoji fit and uniqueness
    /// and comparisons behave as on PostgreSQL and SQLite (case-sensitive).
    pub fn table(&self, name: impl IntoIden) -> TableCreateStatement {
        let mut table = Table::create();
        table.table(name).if_not_exists();
        if self.0 == DatabaseBackend::MySql {
            table
                .engine("InnoDB")
                .character_set("utf8mb4")
                .collate("utf8mb4_bin");
        }
        table
    }
}
