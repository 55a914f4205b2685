//! Test data beyond the demo database, shared by the fixture and differential tests.

use dns_common::limits::{MAX_NAME_LEN, NAME_BUCKETS};

use crate::dns::wire_name;

/// A name of exactly `wire_len` bytes in wire format, ending in `suffix`.
pub fn name_of_len(wire_len: usize, suffix: &str) -> String {
    let mut prefix = wire_len - wire_name(suffix).len();
    let mut labels = Vec::new();
    let mut letter = b'a';
    while prefix > 0 {
        let mut len = (prefix - 1).min(63);
        if prefix - (len + 1) == 1 {
            len -= 1; // never leave a single byte: a label needs two
        }
        labels.push(String::from_utf8(vec![letter; len]).unwrap());
        letter += 1;
        prefix -= len + 1;
    }
    labels.push(suffix.trim_end_matches('.').to_owned());
    labels.join(".") + "."
}

/// 127 labels: 126 one-letter labels under the one-label zone `x.` (255 bytes).
pub fn name_127_labels() -> String {
    "a.".repeat(126) + "x."
}

/// Wire name lengths at every name-map bucket boundary (the longest name of a bucket and
/// the shortest of the next), one inside the last bucket, and the longest name there is.
pub const LONG_NAME_LENGTHS: [usize; 8] = {
    let b = NAME_BUCKETS;
    [b[0], b[0] + 1, b[1], b[1] + 1, b[2], b[2] + 1, (b[2] + MAX_NAME_LEN) / 2, MAX_NAME_LEN]
};
const _: () =
    assert!(NAME_BUCKETS.len() == 4 && NAME_BUCKETS[3] >= MAX_NAME_LEN, "the last bucket holds every name");
pub const BIG_TXT: usize = 200;

/// Test data beyond the demo: long names in every bucket, 127 labels, TXT, an answer
/// over 512 bytes, a 1-second TTL, and a cluster of 8+8 rotated addresses.
pub fn fixture_sql() -> String {
    let mut sql = String::from(
        "INSERT INTO zones (id, apex, soa_mname, soa_rname) VALUES (3, 'x.', 'ns1.example.com.', 'hostmaster.example.com.');
         INSERT INTO clusters (id, name, address_order) VALUES (3, 'rr8', 'rotate');
         INSERT INTO instances (id, name, owner, cluster_id) VALUES (345678, 'www', 'carol', 3);
         INSERT INTO records (zone_id, name, rtype, ttl, rdata) VALUES
            (2, '_acme-challenge.blog.alice.example.org.', 'TXT', 60, '\"token-abc\"'),
            (2, 'short.example.org.', 'A', 1, '192.0.2.99'),
            (2, '*.wild.example.org.', 'A', 300, '192.0.2.77'),
            (2, '*.wild.example.org.', 'TXT', 300, '\"from the wildcard\"'),
            (2, 'child.example.org.', 'NS', 300, 'ns1.child.example.org.'),
            (2, 'ns1.child.example.org.', 'A', 300, '192.0.2.53'),
            (2, 'mail-user.example.org.', 'MX', 300, '10 mx.example.org.'),
            (2, 'mx.example.org.', 'A', 300, '192.0.2.25'),
            (2, 'mx.example.org.', 'AAAA', 300, '2001:db8::25');\n",
    );
    for i in 1..=8 {
        sql += &format!(
            "INSERT INTO cluster_addresses (cluster_id, address) VALUES (3, '192.0.2.10{i}'), (3, '2001:db8::10{i}');\n"
        );
    }
    let txt: Vec<String> = ["a", "b", "c"].iter().map(|c| format!("\"{}\"", c.repeat(BIG_TXT))).collect();
    sql += &format!(
        "INSERT INTO records (zone_id, name, rtype, ttl, rdata) VALUES (2, 'big.example.org.', 'TXT', 60, '{}');\n",
        txt.join(" ")
    );
    for len in LONG_NAME_LENGTHS {
        sql += &format!(
            "INSERT INTO records (zone_id, name, rtype, ttl, rdata) VALUES (2, '{}', 'A', 60, '192.0.2.{len}');\n",
            name_of_len(len, "example.org.")
        );
    }
    sql += &format!(
        "INSERT INTO records (zone_id, name, rtype, ttl, rdata) VALUES (3, '{}', 'A', 60, '192.0.2.127');\n",
        name_127_labels()
    );
    sql
}
