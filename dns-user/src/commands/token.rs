//! `instadns token`: bearer tokens of the HTTP management API (`[api]`).

use anyhow::Result;
use clap::Subcommand;
use instadns::{
    model::{time::rfc3339, token::Access},
    store::{Database, tokens::TokenRow},
};

use super::{Format, output::emit};

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Make a token and print it (once: only its hash is stored). Send it as
    /// `Authorization: Bearer TOKEN`.
    Add {
        /// The token's name, e.g. control-plane or certbot-example-com (audit rows carry it).
        name: String,
        /// read: GET only; write: everything its zones allow.
        #[arg(long, value_enum, default_value_t = Access::Read)]
        access: Access,
        /// A zone the token may touch; repeat. Default: every zone, and the nouns no zone
        /// owns (clusters, instances, territories, keys, tokens, the fleet, the audit log).
        #[arg(long = "zone")]
        zones: Vec<String>,
    },
    /// Remove a token: requests with it get 401.
    #[command(alias = "remove")]
    Rm { name: String },
    /// List tokens and their scopes (never their secrets).
    List {
        #[command(flatten)]
        format: Format,
    },
}

pub async fn run(db: &Database, command: TokenCommand) -> Result<()> {
    match command {
        TokenCommand::Add { name, access, zones } => {
            let (row, secret) = db.add_api_token(&name, access, &zones).await?;
            eprintln!("# token {}: {} (shown once: keep it now)", row.name, describe(&row));
            println!("{secret}");
        }
        TokenCommand::Rm { name } => {
            db.remove_api_token(&name).await?;
            println!("token {name} removed");
        }
        TokenCommand::List { format } => emit(format.json, &db.list_api_tokens().await?, |tokens| {
            tokens
                .iter()
                .map(|t| format!("{}  {}  since {}\n", t.name, describe(t), rfc3339(t.created)))
                .collect()
        })?,
    }
    Ok(())
}

fn describe(token: &TokenRow) -> String {
    let zones = if token.zones.is_empty() { "every zone".to_owned() } else { token.zones.join(" ") };
    format!("{} in {zones}", token.access)
}
