//! Faults the platform meets (issue 18): the filesystem holding the SQLite database
//! fills up while the daemon serves. Writes fail at once with an error that says what
//! to do, nothing committed is lost or corrupted, the daemon keeps answering, and once
//! space is freed writes work and reach the answers again.

use std::{
    io::Write as _,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use hickory_proto::rr::RecordType;
use tests::{
    dns::{QueryBuilder, answer_data},
    server::{Deployment, cli, cli_run, demo_db, poll_until, server_v4 as server},
};

/// A tmpfs of `size` mounted on `dir` for the test, unmounted on drop.
struct SmallFilesystem(PathBuf);

impl SmallFilesystem {
    fn mount(dir: &Path, size: &str) -> Self {
        tests::require_root();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0755"), "tmpfs"])
            .arg(dir)
            .status()
            .expect("mount");
        assert!(status.success(), "mounting a tmpfs on {}", dir.display());
        Self(dir.to_owned())
    }
}

impl Drop for SmallFilesystem {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Writes `path` until the filesystem has no room left.
fn fill(path: &Path) {
    let mut file = std::fs::File::create(path).expect("filler file");
    let block = vec![0xa5u8; 64 * 1024];
    while file.write_all(&block).is_ok() {}
    let _ = file.sync_all();
}

#[test]
fn a_full_database_filesystem_fails_writes_clearly_loses_nothing_and_recovers() {
    let state = tempfile::tempdir().expect("state directory");
    let _small = SmallFilesystem::mount(state.path(), "16m");
    let db = demo_db(state.path());
    let d = Deployment::start_on(&db, tempfile::tempdir().expect("log directory"), &[]);
    let blog = QueryBuilder::new("blog.alice.example.org", RecordType::A).bytes();
    poll_until(&d.rig, server(), &blog, Duration::from_secs(5), |r| !answer_data(r).is_empty())
        .expect("the demo data is answered");
    cli(&db, &["instance", "add", "700001", "--cluster", "mt2", "--name", "before", "--owner", "zed"]);

    // The filesystem fills up: a write fails with an error naming the cause and the fix.
    let filler = state.path().join("filler");
    fill(&filler);
    let failed = cli_run(
        &db,
        &["instance", "add", "700002", "--cluster", "mt2", "--name", "during", "--owner", "zed"],
    );
    assert_ne!(failed.code, 0, "a write to a full filesystem must fail: {}", failed.stdout);
    assert!(
        failed.stderr.contains("full") && failed.stderr.contains("free space"),
        "the error says the disk is full and what to do: {}",
        failed.stderr
    );
    assert!(!failed.stderr.contains("panicked"), "{}", failed.stderr);

    // The daemon keeps answering, from the data it had and from the database.
    let before = QueryBuilder::new("before.zed.example.org", RecordType::A).bytes();
    for query in [&blog, &before] {
        poll_until(&d.rig, server(), query, Duration::from_secs(5), |r| !answer_data(r).is_empty())
            .unwrap_or_else(|| panic!("not answered while the disk is full\n{}", d.server.log_text()));
    }
    // Its own periodic writes (the fleet report, every 5 s) fail without stopping it.
    std::thread::sleep(Duration::from_secs(6));
    poll_until(&d.rig, server(), &blog, Duration::from_secs(5), |r| !answer_data(r).is_empty())
        .unwrap_or_else(|| panic!("the daemon stopped answering on a full disk\n{}", d.server.log_text()));

    // Space again: writes work and reach the answers; nothing was lost or damaged.
    std::fs::remove_file(&filler).expect("freeing space");
    cli(&db, &["instance", "add", "700003", "--cluster", "mt2", "--name", "after", "--owner", "zed"]);
    let after = QueryBuilder::new("after.zed.example.org", RecordType::A).bytes();
    poll_until(&d.rig, server(), &after, Duration::from_secs(5), |r| !answer_data(r).is_empty())
        .unwrap_or_else(|| {
            panic!("a write after the disk was freed is not answered\n{}", d.server.log_text())
        });
    let list = cli(&db, &["instance", "list"]);
    for (id, present) in [("700001", true), ("700002", false), ("700003", true)] {
        assert_eq!(list.contains(id), present, "instance {id} in:\n{list}");
    }
    let integrity: String = rusqlite::Connection::open(&db)
        .and_then(|c| c.query_row("PRAGMA integrity_check", [], |r| r.get(0)))
        .expect("integrity check");
    assert_eq!(integrity, "ok");
}
