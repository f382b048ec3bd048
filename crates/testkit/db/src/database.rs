//! A fresh, empty database for each test: a temporary SQLite file, or a new database on the MySQL/MariaDB or
//! PostgreSQL server named by `CRM_TEST_MYSQL_URL` / `CRM_TEST_POSTGRES_URL`, dropped again when the story
//! passes.

use std::future::Future;

use sea_orm::{ConnectionTrait, Database};

use crate::requirement::{self, Requirement};

/// Which backend a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestBackend {
    /// A temporary SQLite file.
    Sqlite,
    /// A new database on the server of `CRM_TEST_MYSQL_URL`.
    MySql,
    /// A new database on the server of `CRM_TEST_POSTGRES_URL`.
    Postgres,
}

impl TestBackend {
    /// What this backend needs configured, if it needs a server.
    pub fn requirement(self) -> Option<Requirement> {
        match self {
            TestBackend::Sqlite => None,
            TestBackend::MySql => Some(requirement::MYSQL),
            TestBackend::Postgres => Some(requirement::POSTGRES),
        }
    }
}

/// A database that exists for one test.
#[derive(Debug)]
pub struct TestDatabase {
    /// Its URL, ready for `crm` (`DATABASE_URL`).
    pub url: String,
    /// Its backend.
    pub backend: TestBackend,
    /// A scratch directory for the test (the SQLite file, `DATA_DIR`); removed on drop.
    pub dir: tempfile::TempDir,
}

impl TestDatabase {
    /// Creates the database. A server backend whose variable is not set is an error naming the variable: a
    /// test that cannot get its database fails, it never passes without having run.
    pub async fn create(backend: TestBackend) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("crm-test-").tempdir()?;
        let url = match backend.requirement() {
            None => format!("sqlite://{}?mode=rwc", dir.path().join("crm.sqlite3").display()),
            Some(need) => {
                let server_url = need.value().ok_or_else(|| {
                    anyhow::anyhow!("set {} to run this story on {backend:?}", need.variable)
                })?;
                create_server_database(&server_url).await?
            }
        };
        Ok(Self { url, backend, dir })
    }
}

async fn create_server_database(server_url: &str) -> anyhow::Result<String> {
    let name = format!("crm_t_{}", uuid::Uuid::new_v4().simple());
    let admin = Database::connect(server_url)
        .await
        .map_err(|error| anyhow::anyhow!("cannot reach test database server {server_url}: {error}"))?;
    let statement = if server_url.starts_with("mysql") || server_url.starts_with("mariadb") {
        format!("CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    } else {
        format!("CREATE DATABASE {name}")
    };
    admin.execute_unprepared(&statement).await?;
    admin.close().await?;
    let mut url = url::Url::parse(server_url)?;
    url.set_path(&format!("/{name}"));
    Ok(url.to_string())
}

/// Runs `story` on a fresh database of `backend`, and drops that database when the story passed.
///
/// Stories for a server backend are declared so that they are reported as ignored when its variable was not
/// set at build time ([`crate::on_every_backend!`]); one that runs anyway without its variable (with
/// `--ignored`) fails here, naming the variable, and so does any story under `CI=true`.
pub async fn run_story<F, Fut>(backend: TestBackend, story: F)
where
    F: FnOnce(TestDatabase) -> Fut,
    Fut: Future<Output = ()>,
{
    if let Some(need) = backend.requirement() {
        need.require();
    }
    let database = TestDatabase::create(backend)
        .await
        .unwrap_or_else(|error| panic!("test database for {backend:?} could not be created: {error:#}"));
    let url = database.url.clone();
    story(database).await;
    // Only a passing story gets here; a failed one leaves its database for inspection.
    drop_server_database(backend, &url).await;
}

async fn drop_server_database(backend: TestBackend, url: &str) {
    let Some(need) = backend.requirement() else {
        return;
    };
    let (Some(server_url), Ok(parsed)) = (need.value(), url::Url::parse(url)) else {
        return;
    };
    let name = parsed.path().trim_start_matches('/').to_owned();
    let statement = match backend {
        TestBackend::Postgres => format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        _ => format!("DROP DATABASE IF EXISTS {name}"),
    };
    if let Ok(admin) = Database::connect(&server_url).await {
        if let Err(error) = admin.execute_unprepared(&statement).await {
            eprintln!("could not drop test database {name}: {error}");
        }
        let _ = admin.close().await;
    }
}
