//! Traffic steering end to end, through the real XDP path: TTL management and the
//! prepared move (lower the TTL, wait out the old one, switch, restore), traced with the
//! TTLs `dig` sees.

use std::{
    io::Read as _,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use tests::{
    netns::{SERVER_V4, VethRig},
    server::{Deployment, cli, dig, instadns_bin},
};

/// (TTL, address) of the first A record dig gets for `name`.
fn ttl_and_address(rig: &VethRig, name: &str) -> Option<(u32, String)> {
    let out = dig(rig, &[&format!("@{SERVER_V4}"), name, "A", "+noall", "+answer"]);
    let line = out.lines().find(|l| l.contains("\tA\t") || l.split_whitespace().nth(3) == Some("A"))?;
    let fields: Vec<&str> = line.split_whitespace().collect();
    Some((fields.get(1)?.parse().ok()?, fields.get(4)?.to_string()))
}

/// Polls `name` until dig sees `expected`; panics after a few seconds.
fn wait_for(rig: &VethRig, name: &str, expected: (u32, &str)) {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut last = None;
    while Instant::now() < deadline {
        last = ttl_and_address(rig, name);
        if last.as_ref().is_some_and(|(t, a)| *t == expected.0 && a == expected.1) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{name}: expected {expected:?}, last seen {last:?}");
}

#[test]
fn a_prepared_move_lowers_the_ttl_waits_switches_and_restores() {
    let d = Deployment::start(&["--xdp-mode", "native"]);
    let db = d.db();
    const NAME: &str = "123456.example.org";
    const OLD_TTL: u32 = 4;
    // An override on every name of the instance (its service name's rule TTL is 300 s):
    // the prepared move must restore it afterwards.
    cli(&db, &["ttl", "apply", "--instance", "123456", "--ttl", &OLD_TTL.to_string()]);
    wait_for(&d.rig, NAME, (OLD_TTL, "192.0.2.1"));

    // The dry run says what it would do, changes nothing and does not wait.
    let started = Instant::now();
    let dry =
        cli(&db, &["instance", "move", "123456", "--to", "mt2", "--prepare", "--ttl", "1", "--dry-run"]);
    assert!(started.elapsed() < Duration::from_secs(OLD_TTL.into()), "a dry run does not wait");
    for step in
        ["step 1/4: lowering the TTL of instance 123456 from 4s to 1s", "step 2/4", "step 3/4", "step 4/4"]
    {
        assert!(dry.contains(&format!("[dry run] {step}")), "{step} in:\n{dry}");
    }
    assert!(cli(&db, &["instance", "show", "123456"]).contains("cluster  mt1"), "the dry run moved nothing");
    let before = ttl_and_address(&d.rig, NAME);
    assert_eq!(before, Some((OLD_TTL, "192.0.2.1".into())));

    // The real move, traced by a client asking every 50 ms. The CLI lowers the TTL at
    // once, maybe before the first poll: the trace starts with what dig saw just before.
    let mut child = Command::new(instadns_bin())
        .args(["instance", "move", "123456", "--to", "mt2", "--prepare", "--ttl", "1", "--db", &db])
        .stdout(Stdio::piped())
        .spawn()
        .expect("instadns instance move");
    let started = Instant::now();
    let mut seen: Vec<(Duration, u32, String)> =
        before.into_iter().map(|(ttl, address)| (Duration::ZERO, ttl, address)).collect();
    let mut exited_at = None;
    while exited_at.is_none_or(|t: Instant| t.elapsed() < Duration::from_millis(500)) {
        assert!(started.elapsed() < Duration::from_secs(30), "the prepared move did not finish");
        if let Some((ttl, address)) = ttl_and_address(&d.rig, NAME) {
            seen.push((started.elapsed(), ttl, address));
        }
        if exited_at.is_none() && child.try_wait().expect("wait").is_some() {
            exited_at = Some(Instant::now());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(child.wait().expect("status").success());
    let mut steps = String::new();
    child.stdout.take().expect("stdout").read_to_string(&mut steps).expect("output");
    println!("{steps}");

    // The states dig saw, in order, each once.
    let mut states: Vec<(u32, &str)> = Vec::new();
    for (_, ttl, address) in &seen {
        if states.last() != Some(&(*ttl, address.as_str())) {
            states.push((*ttl, address));
        }
    }
    println!("seen by dig: {states:?}");
    assert_eq!(
        states,
        [(OLD_TTL, "192.0.2.1"), (1, "192.0.2.1"), (1, "192.0.2.2"), (OLD_TTL, "192.0.2.2")],
        "old TTL, lowered TTL, switched with the lowered TTL, TTL restored"
    );
    // The switch came only after the old TTL had run out since the TTL was lowered.
    let lowered = seen.iter().find(|(_, t, _)| *t == 1).map(|(at, _, _)| *at).expect("lowered");
    let switched = seen.iter().find(|(_, _, a)| a == "192.0.2.2").map(|(at, _, _)| *at).expect("switched");
    assert!(
        switched - lowered >= Duration::from_secs(OLD_TTL.into()) - Duration::from_millis(100),
        "switched {switched:?} after lowering at {lowered:?}: the old TTL was not waited out"
    );
    for step in [
        "step 1/4: lowering the TTL of instance 123456 from 4s to 1s",
        "step 2/4: waiting 4s",
        "step 3/4: moving instance 123456 to cluster mt2",
        "moved from mt1 to mt2 (tombstone recorded)",
        "step 4/4: waiting 1s",
        "done: instance 123456 is on cluster mt2 with TTL 4s",
    ] {
        assert!(steps.contains(step), "{step:?} in:\n{steps}");
    }
}

#[test]
fn ttl_apply_changes_clusters_instances_and_names() {
    let d = Deployment::start(&["--xdp-mode", "native"]);
    let db = d.db();
    wait_for(&d.rig, "234567.example.org", (60, "192.0.2.2"));

    let dry = cli(&db, &["ttl", "apply", "--cluster", "mt2", "--ttl", "7", "--dry-run"]);
    assert!(
        dry.contains("would set TTL of 1 instance(s) on cluster mt2 from the rule's default to 7s"),
        "{dry}"
    );
    assert_eq!(ttl_and_address(&d.rig, "234567.example.org"), Some((60, "192.0.2.2".into())));

    let out = cli(&db, &["ttl", "apply", "--cluster", "mt2", "--ttl", "7"]);
    assert!(out.contains("set TTL of 1 instance(s) on cluster mt2"), "{out}");
    wait_for(&d.rig, "234567.example.org", (7, "192.0.2.2"));
    wait_for(&d.rig, "shop.bob.example.org", (7, "192.0.2.2"));
    assert_eq!(
        ttl_and_address(&d.rig, "123456.example.org"),
        Some((60, "192.0.2.1".into())),
        "mt1 unchanged"
    );

    // A name of an instance: the instance's TTL; --clear restores the rule's.
    let out = cli(&db, &["ttl", "apply", "--name", "shop.bob.example.org", "--clear"]);
    assert!(out.contains("is a name of instance 234567"), "{out}");
    wait_for(&d.rig, "234567.example.org", (60, "192.0.2.2"));
    cli(&db, &["ttl", "apply", "--instance", "123456", "--ttl", "9"]);
    wait_for(&d.rig, "blog.alice.example.org", (9, "192.0.2.1"));

    // A static name: its records.
    let out = cli(&db, &["ttl", "apply", "--name", "ns1.example.com", "--ttl", "120"]);
    assert!(out.contains("set TTL of ns1.example.com. A from 3600s to 120s"), "{out}");
    wait_for(&d.rig, "ns1.example.com", (120, "192.0.2.53"));

    // Errors name the problem.
    for (args, message) in [
        (&["ttl", "apply", "--name", "nothing.example.org", "--ttl", "5"][..], "neither static records nor"),
        (&["ttl", "apply", "--name", "ns1.example.com", "--clear"][..], "give --ttl"),
        (&["ttl", "apply", "--cluster", "nope", "--ttl", "5"][..], "nope"),
        (&["ttl", "apply", "--cluster", "mt1"][..], "--ttl"),
        (&["instance", "move", "123456", "--to", "mt2", "--ttl", "5"][..], "--prepare"),
    ] {
        let out = Command::new(instadns_bin()).args(args).args(["--db", &db]).output().expect("instadns");
        assert!(!out.status.success(), "{args:?} must fail");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(message), "{args:?}: {message:?} in {stderr}");
    }
}
