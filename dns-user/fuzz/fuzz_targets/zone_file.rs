//! Zone file import (RFC 1035 text, as `instadns zone import` and `zone_files` read it)
//! into a real SQLite database: any text is imported or refused with an error, never a
//! panic; an imported zone exports again.
#![no_main]

use std::sync::LazyLock;

use instadns::store::{Database, DbLocation};
use libfuzzer_sys::fuzz_target;

struct Rig {
    rt: tokio::runtime::Runtime,
    db: Database,
    _dir: tempfile::TempDir,
}

static RIG: LazyLock<Rig> = LazyLock::new(|| {
    let dir = tempfile::tempdir().expect("temporary directory");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let location = DbLocation::Sqlite(dir.path().join("fuzz.sqlite"));
    let db = rt.block_on(Database::open(&location)).expect("database");
    Rig { rt, db, _dir: dir }
});

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let imported = RIG.rt.block_on(RIG.db.import_zone(text, Some("fuzz.example.")));
    if let Ok((apex, _)) = imported
        && let Err(e) = RIG.rt.block_on(RIG.db.export_zone(&apex))
    {
        panic!("{apex} was imported but does not export: {e}\n{text}");
    }
});
