//! The demo data a new database starts with (README: what the server answers).

/// Statements inserting the demo platform: two zones, two clusters, two instances.
pub const DEMO_SQL: &str = r#"
INSERT INTO zones (id, apex, soa_mname, soa_rname, soa_serial, soa_minimum, soa_ttl, ns_ttl) VALUES
    (1, 'example.com.', 'ns1.example.com.', 'hostmaster.example.com.', 1, 60, 3600, 3600),
    (2, 'example.org.', 'ns1.example.com.', 'hostmaster.example.com.', 1, 60, 3600, 3600);
INSERT INTO zone_ns (zone_id, nsdname) VALUES
    (1, 'ns1.example.com.'), (1, 'ns2.example.com.'),
    (2, 'ns1.example.com.'), (2, 'ns2.example.com.');
INSERT INTO records (zone_id, name, rtype, ttl, rdata) VALUES
    (1, 'ns1.example.com.', 'A', 3600, '192.0.2.53'),
    (1, 'ns2.example.com.', 'A', 3600, '192.0.2.54'),
    (1, 'ws-mt1.example.com.', 'A', 300, '192.0.2.11'),
    (1, 'ws-mt2.example.com.', 'A', 300, '192.0.2.12');
INSERT INTO clusters (id, name) VALUES (1, 'mt1'), (2, 'mt2');
INSERT INTO cluster_services (cluster_id, service, target) VALUES
    (1, 'ws', 'ws-mt1.example.com.'),
    (2, 'ws', 'ws-mt2.example.com.');
INSERT INTO cluster_addresses (cluster_id, address) VALUES
    (1, '192.0.2.1'), (1, '2001:db8::1'),
    (2, '192.0.2.2'), (2, '2001:db8::2');
INSERT INTO instances (id, name, owner, cluster_id, ttl) VALUES
    (123456, 'blog', 'alice', 1, NULL),
    (234567, 'shop', 'bob', 2, NULL);
INSERT INTO name_rules (zone_id, pattern, kind, ttl) VALUES
    (1, '{service}-{id}.apps', 'service', 300),
    (2, '{name}.{owner}', 'host', 60),
    (2, '{id}', 'host', 60);
"#;
