//! Unbound, started by the test as a resolver in the client namespace with stub zones
//! pointing at instadns, with QNAME minimisation (which trips over empty non-terminals
//! answered NXDOMAIN) and 0x20 case randomisation (which rejects answers that do not
//! echo the question's case), resolves the platform's names through instadns.

use std::time::Duration;

use tests::{
    server::Deployment,
    unbound::{resolve, start_unbound},
};

#[test]
fn unbound_with_qname_minimisation_and_0x20_resolves_through_instadns() {
    let d = Deployment::start(&["--xdp-mode", "native"]);
    // The customer's own zone, CNAMEing its www to the instance's host name.
    let db = d.db();
    let cli = |args: &[&str]| tests::server::cli(&db, args);
    cli(&["zone", "add", "customer.test", "--ns", "ns1.example.com"]);
    cli(&["zone", "record", "add", "customer.test", "www.customer.test", "CNAME", "123456.example.org."]);
    cli(&["domain", "add", "www.customer.test", "--instance", "123456"]);
    std::thread::sleep(Duration::from_millis(200));
    let _unbound = start_unbound(&d, &["example.com", "example.org", "customer.test"]);

    let service = resolve(&d, "ws-123456.apps.example.com", "A");
    assert!(service.contains("status: NOERROR"), "{service}");
    assert!(service.contains("CNAME\tws-mt1.example.com.") && service.contains("192.0.2.11"), "{service}");

    let host = resolve(&d, "blog.alice.example.org", "AAAA");
    assert!(host.contains("status: NOERROR") && host.contains("2001:db8::1"), "{host}");

    let by_id = resolve(&d, "234567.example.org", "A");
    assert!(by_id.contains("status: NOERROR") && by_id.contains("192.0.2.2"), "{by_id}");

    let custom = resolve(&d, "www.customer.test", "A");
    assert!(custom.contains("status: NOERROR"), "{custom}");
    assert!(
        custom.contains("CNAME\t123456.example.org.") && custom.contains("192.0.2.1"),
        "through the CNAME: {custom}"
    );

    let missing = resolve(&d, "nope.example.org", "A");
    assert!(missing.contains("status: NXDOMAIN"), "{missing}");
    let missing_deep = resolve(&d, "a.b.nope.example.org", "A");
    assert!(missing_deep.contains("status: NXDOMAIN"), "{missing_deep}");

    // The case-randomised queries Unbound sent were answered, some by XDP.
    assert!(d.server.xdp("hit") + d.server.xdp("miss") > 0);
}
