//! The services a story may need beyond SQLite, each named by an environment variable, and whether the run is
//! CI (where every one of them must be there). Shared with the build script, so it uses `std` only.

/// A test service configured through an environment variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requirement {
    /// The variable that configures it.
    pub variable: &'static str,
    /// The `cfg` the build script sets when the variable was set at build time.
    pub cfg: &'static str,
    /// What the variable must hold.
    pub what: &'static str,
}

/// A MySQL/MariaDB server on which tests may create databases.
pub const MYSQL: Requirement = Requirement {
    variable: "CRM_TEST_MYSQL_URL",
    cfg: "crm_test_mysql",
    what: "the URL of a MySQL/MariaDB server where tests may create databases",
};

/// A PostgreSQL server on which tests may create databases.
pub const POSTGRES: Requirement = Requirement {
    variable: "CRM_TEST_POSTGRES_URL",
    cfg: "crm_test_postgres",
    what: "the URL of a PostgreSQL server where tests may create databases",
};

/// A `redis-server` binary, from which stories start throw-away Redis servers.
pub const REDIS_SERVER: Requirement = Requirement {
    variable: "CRM_TEST_REDIS_SERVER",
    cfg: "crm_test_redis_server",
    what: "the path of a redis-server binary",
};

/// Every requirement.
pub const ALL: [Requirement; 3] = [MYSQL, POSTGRES, REDIS_SERVER];

impl Requirement {
    /// The variable's value, when it is set and not blank.
    pub fn value(self) -> Option<String> {
        std::env::var(self.variable)
            .ok()
            .filter(|value| !value.trim().is_empty())
    }

    /// Whether the variable is set (and not blank).
    pub fn is_set(self) -> bool {
        self.value().is_some()
    }

    /// The variable's value; panics with what to set when it is missing. A story that runs although its
    /// requirement is missing (run with `--ignored`, or built with the variable and run without it) fails here
    /// instead of passing without having run.
    pub fn require(self) -> String {
        match self.value() {
            Some(value) => value,
            None if is_ci() => panic!(
                "CI is set but {} is not: CI must run every story ({})",
                self.variable, self.what
            ),
            None => panic!(
                "this story needs {}: set it to {} (without it the story is reported as ignored)",
                self.variable, self.what
            ),
        }
    }
}

/// Whether this is a CI run: `CI` is set to anything but an empty string, `0` or `false` (CI services set
/// `CI=true`).
pub fn is_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| {
        let value = value.trim();
        !value.is_empty() && value != "0" && !value.eq_ignore_ascii_case("false")
    })
}
