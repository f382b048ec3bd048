//! Opening the database chosen by URL, applying migrations with progress, and checking that it answers.

use std::time::Duration;

use crm_core::secrets::SecretBox;
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseBackend, DatabaseConnection, Statement};
use sea_orm_migration::MigratorTrait;

use crate::migration::Migrator;
use crate::{StoreError, StoreResult};

/// The database product behind a URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An embedded SQLite file (single instance).
    Sqlite,
    /// MySQL 8 or MariaDB 10.6+.
    MySql,
    /// PostgreSQL.
    Postgres,
}

impl Backend {
    /// Picks the backend from a URL scheme (`sqlite:`, `mysql:`/`mariadb:`, `postgres:`/`postgresql:`).
    pub fn from_url(url: &str) -> StoreResult<Self> {
        let scheme = url.split(':').next().unwrap_or_default().to_ascii_lowercase();
        match scheme.as_str() {
            "sqlite" => Ok(Backend::Sqlite),
            "mysql" | "mariadb" => Ok(Backend::MySql),
            "postgres" | "postgresql" => Ok(Backend::Postgres),
            _ => Err(StoreError::InvalidUrl(format!(
                "unsupported scheme `{scheme}`: use sqlite:, mysql: or postgres:"
            ))),
        }
    }

    /// Short name for status pages and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::MySql => "mysql",
            Backend::Postgres => "postgres",
        }
    }

    /// Whether the backend supports `SELECT … FOR UPDATE SKIP LOCKED` (several instances claiming jobs).
    pub fn supports_skip_locked(self) -> bool {
        !matches!(self, Backend::Sqlite)
    }
}

/// Tunables of the connection pool.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// Largest number of open connections.
    pub max_connections: u32,
    /// How long a query waits for a free connection before failing as unavailable.
    pub acquire_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

/// The database handle every repository works through, with the secret box for sealed columns.
#[derive(Debug, Clone)]
pub struct Store {
    db: DatabaseConnection,
    backend: Backend,
    secrets: SecretBox,
}

/// Replaces the password in a database URL, for logs.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

impl Store {
    /// Connects to the database at `url` (creating a SQLite file if missing). Does not migrate.
    pub async fn connect(url: &str, pool: &PoolSettings, secrets: SecretBox) -> StoreResult<Self> {
        let backend = Backend::from_url(url)?;
        let mut options = ConnectOptions::new(url.to_owned());
        options
            .max_connections(pool.max_connections)
            .min_connections(0)
            .acquire_timeout(pool.acquire_timeout)
            .connect_timeout(pool.acquire_timeout)
            .sqlx_logging(false)
            .map_sqlx_sqlite_opts(|opts| {
                opts.create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(10))
            });
        let db = Database::connect(options)
            .await
            .map_err(|error| match StoreError::from(error) {
                StoreError::Database(inner) => StoreError::Unavailable(inner.to_string()),
                other => other,
            })?;
        Ok(Self { db, backend, secrets })
    }

    /// Applies every pending migration, calling `progress(index, total, name)` before each.
    pub async fn migrate(&self, mut progress: impl FnMut(usize, usize, &str)) -> StoreResult<usize> {
        let pending = Migrator::get_pending_migrations(&self.db).await?;
        let total = pending.len();
        for (index, migration) in pending.iter().enumerate() {
            progress(index + 1, total, migration.name());
            Migrator::up(&self.db, Some(1)).await?;
        }
        Ok(total)
    }

    /// Names of migrations not applied yet.
    pub async fn pending_migrations(&self) -> StoreResult<Vec<String>> {
        Ok(Migrator::get_pending_migrations(&self.db)
            .await?
            .iter()
            .map(|m| m.name().to_owned())
            .collect())
    }

    /// Runs a trivial query; fails when the database cannot be reached.
    pub async fn ping(&self) -> StoreResult<()> {
        self.db
            .query_one_raw(Statement::from_string(self.db.get_database_backend(), "SELECT 1"))
            .await
            .map_err(|error| StoreError::Unavailable(error.to_string()))?;
        Ok(())
    }

    /// Closes every pooled connection; later queries fail as unavailable.
    pub async fn close(&self) -> StoreResult<()> {
        self.db.close_by_ref().await?;
        Ok(())
    }

    /// The SeaORM connection, for repositories and tests.
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Which database product this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The box that seals and opens secret columns.
    pub fn secrets(&self) -> &SecretBox {
        &self.secrets
    }

    /// SeaORM's backend enum, for building statements.
    pub fn db_backend(&self) -> DatabaseBackend {
        self.db.get_database_backend()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backends_come_from_url_schemes() {
        assert_eq!(
            Backend::from_url("sqlite://data/crm.sqlite3").unwrap(),
            Backend::Sqlite
        );
        assert_eq!(
            Backend::from_url("mysql://root@127.0.0.1/test").unwrap(),
            Backend::MySql
        );
        assert_eq!(
            Backend::from_url("postgresql://localhost/x").unwrap(),
            Backend::Postgres
        );
        assert!(Backend::from_url("oracle://x").is_err());
    }

    #[test]
    fn passwords_are_redacted_from_urls() {
        assert_eq!(
            redact_url("mysql://crm:hunter2@db:3306/crm"),
            "mysql://crm:***@db:3306/crm"
        );
        assert_eq!(
            redact_url("sqlite://data/crm.sqlite3"),
            "sqlite://data/crm.sqlite3"
        );
    }
}
