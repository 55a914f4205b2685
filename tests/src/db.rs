//! Test databases: a SQLite file in a temporary directory, or a real PostgreSQL server
//! started for the test, with or without the demo data.

use instadns::store::{Database, DbLocation};

use crate::postgres::PgServer;

pub enum TestDb {
    Sqlite(tempfile::TempDir),
    Postgres(PgServer),
}

impl TestDb {
    pub fn sqlite() -> Self {
        Self::Sqlite(tempfile::tempdir().expect("temporary directory"))
    }

    pub fn postgres() -> Self {
        Self::Postgres(PgServer::start())
    }

    /// Both backends, for tables run on each.
    pub fn both() -> [Self; 2] {
        [Self::sqlite(), Self::postgres()]
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "SQLite",
            Self::Postgres(_) => "PostgreSQL",
        }
    }

    pub fn location(&self) -> DbLocation {
        match self {
            Self::Sqlite(dir) => DbLocation::Sqlite(dir.path().join("test.sqlite")),
            Self::Postgres(pg) => DbLocation::Postgres(pg.url.clone()),
        }
    }

    /// The `--db` argument for the CLI and the daemon.
    pub fn url(&self) -> String {
        self.location().to_string()
    }

    /// The database, migrated and empty.
    pub async fn open_empty(&self) -> Database {
        Database::open(&self.location()).await.expect("open the test database")
    }

    /// The database holding the demo data.
    pub async fn open_demo(&self) -> Database {
        let db = self.open_empty().await;
        db.seed_demo().await.expect("demo data");
        db
    }
}
