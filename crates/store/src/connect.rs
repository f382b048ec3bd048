//! Opening the database chosen by URL, applying migrations with progress, and checking that it answers.
//!
//! Reads go through a pool; writes go through [`Store::writes`]. On MySQL/MariaDB and PostgreSQL that is the
//! same pool, every connection in `READ COMMITTED` (no gap locks for plain reads, so intake waits on row locks
//! only). On SQLite, which allows one writer at a time, writes have a pool of exactly one connection: nothing
//! in this process ever competes for the write lock, so a transaction that reads and then writes cannot fail
//! with `SQLITE_BUSY_SNAPSHOT`, and the use cases' units of work are group-committed by one writer task
//! ([`crate::writer`]).

use std::sync::Arc;
use std::time::Duration;

use crm_core::secrets::SecretBox;
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseBackend, DatabaseConnection, DatabaseTransaction,
    SqliteTransactionMode, Statement, TransactionOptions, TransactionTrait,
};
use sea_orm_migration::MigratorTrait;
use tokio::sync::Notify;

use crate::migration::Migrator;
use crate::writer::GroupWriter;
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
    /// Largest number of open connections (on SQLite, of reading connections: it writes through one).
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

/// Most reading connections on SQLite: each is a thread with its own page cache, and WAL readers are cheap.
const SQLITE_MAX_READERS: u32 = 4;

/// What committed writes tell the rest of the process.
#[derive(Debug, Default)]
pub struct Signals {
    /// Events were written: the relay numbers and publishes them.
    pub events: Arc<Notify>,
    /// Jobs were enqueued: the job runner claims them.
    pub jobs: Arc<Notify>,
}

/// The database handle every repository works through, with the secret box for sealed columns.
#[derive(Clone)]
pub struct Store {
    db: DatabaseConnection,
    writes: DatabaseConnection,
    backend: Backend,
    secrets: SecretBox,
    signals: Arc<Signals>,
    writer: Option<GroupWriter>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("backend", &self.backend).finish()
    }
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

/// The file a `sqlite:` URL names, unless it is an in-memory database.
fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let in_memory =
        path.is_empty() || path == ":memory:" || query.split('&').any(|pair| pair == "mode=memory");
    (!in_memory).then(|| std::path::PathBuf::from(path))
}

fn options(url: &str, max_connections: u32, acquire_timeout: Duration) -> ConnectOptions {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(max_connections.max(1))
        .min_connections(0)
        .acquire_timeout(acquire_timeout)
        .connect_timeout(acquire_timeout)
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|opts| {
            opts.create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10))
        })
        .map_sqlx_mysql_pool_opts(|pool| {
            pool.after_connect(|connection, _| {
                Box::pin(async move {
                    use sea_orm::sqlx::Executor;
                    connection
                        .execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
                        .await?;
                    Ok(())
                })
            })
        });
    options
}

async fn open(options: ConnectOptions) -> StoreResult<DatabaseConnection> {
    Database::connect(options)
        .await
        .map_err(|error| match StoreError::from(error) {
            StoreError::Database(inner) => StoreError::Unavailable(inner),
            other => other,
        })
}

impl Store {
    /// Connects to the database at `url` (creating a SQLite file if missing). Does not migrate.
    pub async fn connect(url: &str, pool: &PoolSettings, secrets: SecretBox) -> StoreResult<Self> {
        let backend = Backend::from_url(url)?;
        let (db, writes) = match backend {
            Backend::Sqlite => {
                if let Some(path) = sqlite_file(url) {
                    crate::files::create_private_file(&path).map_err(|error| {
                        StoreError::Unavailable(sea_orm::DbErr::Custom(format!(
                            "cannot create the database file {}: {error}",
                            path.display()
                        )))
                    })?;
                }
                let readers = pool.max_connections.min(SQLITE_MAX_READERS);
                let db = open(options(url, readers, pool.acquire_timeout)).await?;
                let writes = open(options(url, 1, pool.acquire_timeout)).await?;
                (db, writes)
            }
            Backend::MySql | Backend::Postgres => {
                let db = open(options(url, pool.max_connections, pool.acquire_timeout)).await?;
                (db.clone(), db)
            }
        };
        let mut store = Self {
            db,
            writes,
            backend,
            secrets,
            signals: Arc::new(Signals::default()),
            writer: None,
        };
        if backend == Backend::Sqlite {
            store.writer = Some(GroupWriter::start(store.clone()));
        }
        Ok(store)
    }

    /// Applies every pending migration, calling `progress(index, total, name)` before each.
    pub async fn migrate(&self, mut progress: impl FnMut(usize, usize, &str)) -> StoreResult<usize> {
        let pending = Migrator::get_pending_migrations(&self.writes).await?;
        let total = pending.len();
        for (index, migration) in pending.iter().enumerate() {
            progress(index + 1, total, migration.name());
            Migrator::up(&self.writes, Some(1)).await?;
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
            .map_err(StoreError::Unavailable)?;
        Ok(())
    }

    /// Closes every pooled connection; later queries fail as unavailable.
    pub async fn close(&self) -> StoreResult<()> {
        self.db.close_by_ref().await?;
        if self.backend == Backend::Sqlite {
            self.writes.close_by_ref().await?;
        }
        Ok(())
    }

    /// The connection for reads (on MySQL/PostgreSQL, for writes too).
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// The connection every write goes through (on SQLite, the one writing connection).
    pub fn writes(&self) -> &DatabaseConnection {
        &self.writes
    }

    /// Starts a write transaction: `BEGIN IMMEDIATE` on SQLite, so it holds the write lock from its first
    /// statement and never has to upgrade a read (which another process's write could make fail).
    pub async fn begin_write(&self) -> StoreResult<DatabaseTransaction> {
        let options = TransactionOptions {
            sqlite_transaction_mode: (self.backend == Backend::Sqlite)
                .then_some(SqliteTransactionMode::Immediate),
            ..TransactionOptions::default()
        };
        Ok(self.writes.begin_with_options(options).await?)
    }

    /// Which database product this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The box that seals and opens secret columns.
    pub fn secrets(&self) -> &SecretBox {
        &self.secrets
    }

    /// What committed writes signal (events to publish, jobs to run).
    pub fn signals(&self) -> &Arc<Signals> {
        &self.signals
    }

    /// The group writer of SQLite, if this store has one.
    pub(crate) fn group_writer(&self) -> Option<&GroupWriter> {
        self.writer.as_ref()
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
