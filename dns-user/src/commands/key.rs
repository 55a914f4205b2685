//! `instadns key`: TSIG keys (RFC 8945) for signed updates, transfers and queries.

use anyhow::Result;
use clap::Subcommand;
use instadns::{
    model::{
        Invalid,
        key::{KeyScope, NamePattern, Operation, Secret, TsigAlgorithm},
    },
    protocol::parse_user_name,
    store::keys::KeyRow,
};

use super::{Format, output::emit, target::Target};

#[derive(Subcommand)]
pub enum KeyCommand {
    /// Add a key with a new random secret; prints it as a BIND `key` clause (what
    /// nsupdate -k, certbot's rfc2136 plugin, Knot and NSD read).
    Add {
        /// The key's name, e.g. certbot or acme.example.org.
        name: String,
        #[arg(long, value_enum, default_value_t = TsigAlgorithm::HmacSha256)]
        algorithm: TsigAlgorithm,
        /// A zone the key may touch; repeat. Default: every zone.
        #[arg(long = "zone")]
        zones: Vec<String>,
        /// Names it may touch: _acme-challenge.*, *.example.org or a name; repeat.
        /// Default: every name.
        #[arg(long = "name")]
        names: Vec<NamePattern>,
        /// What it may do; repeat. Default: update, transfer and query.
        #[arg(long = "allow", value_enum)]
        operations: Vec<Operation>,
        /// Use this base64 secret instead of a new one (a key shared with another system).
        #[arg(long)]
        secret: Option<String>,
    },
    /// Remove a key: requests signed with it get BADKEY.
    #[command(alias = "remove")]
    Rm { name: String },
    /// List keys and their scopes (not their secrets).
    List {
        #[command(flatten)]
        format: Format,
    },
    /// Print a key as a BIND `key` clause, its secret included.
    Show { name: String },
}

pub async fn run(target: &Target, command: KeyCommand) -> Result<()> {
    match command {
        KeyCommand::Add { name, algorithm, zones, names, operations, secret } => {
            let secret = secret.as_deref().map(Secret::from_base64).transpose()?;
            let zones = zones
                .iter()
                .map(|z| parse_user_name(z).map_err(|e| Invalid(format!("key zone {z:?}: {e}"))))
                .collect::<Result<Vec<_>, _>>()?;
            let operations = if operations.is_empty() { Operation::ALL.to_vec() } else { operations };
            let scope = KeyScope { zones, names, operations };
            let key = target.add_key(&name, algorithm, secret, &scope).await?;
            print!("{}", bind_clause(&key));
        }
        KeyCommand::Rm { name } => {
            target.remove_key(&name).await?;
            println!("key {name} removed");
        }
        KeyCommand::List { format } => emit(format.json, &target.list_keys().await?, |keys| {
            keys.iter().map(|k| format!("{}  {}\n", k.name, describe_scope(k))).collect()
        })?,
        KeyCommand::Show { name } => print!(
            "{}",
            bind_clause(
                &target
                    .database("key show (the API answers a secret only when the key is made)")?
                    .key(&name)
                    .await?
            )
        ),
    }
    Ok(())
}

/// The BIND `key` clause, with the scope as a comment.
fn bind_clause(key: &KeyRow) -> String {
    format!(
        "# {}\nkey \"{}\" {{\n\talgorithm {};\n\tsecret \"{}\";\n}};\n",
        describe_scope(key),
        key.name.trim_end_matches('.'),
        key.algorithm,
        key.secret.to_base64()
    )
}

fn describe_scope(key: &KeyRow) -> String {
    let or_all =
        |items: &[String], all: &str| if items.is_empty() { all.to_owned() } else { items.join(" ") };
    format!(
        "{} for {} in {}, names {}",
        key.algorithm,
        key.operations.join(", "),
        or_all(&key.zones, "every zone"),
        or_all(&key.names, "all")
    )
}
