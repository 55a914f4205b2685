//! The TSIG keys, loaded with the catalog: who may sign what.

use std::{collections::HashMap, sync::Arc};

use hickory_proto::rr::Name;

use crate::{
    model::key::KeyScope,
    protocol::{name_to_wire, tsig::TsigKey},
    store::keys::KeyRow,
};

/// A key ready to verify and sign with.
pub struct Key {
    pub name: Name,
    pub tsig: TsigKey,
    pub scope: KeyScope,
}

/// The keys by their lower-case wire name.
#[derive(Default)]
pub struct Keys(HashMap<Vec<u8>, Arc<Key>>);

impl Keys {
    pub fn build(rows: &[KeyRow], warnings: &mut Vec<String>) -> Self {
        let mut keys = HashMap::new();
        for row in rows {
            let built = (|| -> Result<Key, String> {
                let name = crate::model::key::key_name(&row.name).map_err(|e| e.to_string())?;
                let scope = row.scope().map_err(|e| e.to_string())?;
                let wire = name_to_wire(&name);
                let tsig = TsigKey {
                    name: wire,
                    algorithm: name_to_wire(
                        &crate::protocol::parse_absolute(&row.algorithm.wire_name())
                            .map_err(|e| e.to_string())?,
                    ),
                    hmac: ring::hmac::Key::new(row.algorithm.hmac(), &row.secret.0),
                    mac_len: row.algorithm.output_len(),
                };
                Ok(Key { name, tsig, scope })
            })();
            match built {
                Ok(key) => {
                    keys.insert(key.tsig.name.clone(), Arc::new(key));
                }
                Err(e) => warnings.push(format!("key {} skipped: {e}", row.name)),
            }
        }
        Self(keys)
    }

    /// The key with this lower-case wire name.
    pub fn get(&self, wire_name: &[u8]) -> Option<&Arc<Key>> {
        self.0.get(wire_name)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Names only: secrets stay out of logs.
impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.values().map(|k| k.name.to_ascii())).finish()
    }
}
