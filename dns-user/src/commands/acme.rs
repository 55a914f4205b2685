//! `instadns acme`: DNS-01 challenge answers at `_acme-challenge.NAME`.

use anyhow::Result;
use clap::{ArgGroup, Subcommand};
use instadns::{
    model::{
        AcmeKind,
        time::{rfc3339, unix_now},
    },
    store::AcmeChallenge,
};

use super::{Format, output::emit, target::Target};

#[derive(Subcommand)]
pub enum AcmeCommand {
    /// Answer a DNS-01 challenge for NAME: a TXT value, or a CNAME into a validation zone.
    #[command(group(ArgGroup::new("answer").required(true).args(["txt", "cname"])))]
    Set {
        /// The name being validated (answers go to _acme-challenge.NAME).
        name: String,
        /// The key authorization digest to answer as TXT.
        #[arg(long)]
        txt: Option<String>,
        /// Delegate validation: CNAME to this name.
        #[arg(long)]
        cname: Option<String>,
        #[arg(long, default_value_t = 60)]
        ttl: u32,
        /// Stop answering the TXT value after this many seconds.
        #[arg(long)]
        expires: Option<u32>,
    },
    /// Remove the challenge answers of NAME (all, or one --txt value).
    #[command(alias = "clear")]
    Rm {
        name: String,
        #[arg(long)]
        txt: Option<String>,
    },
    /// List challenge answers (expired TXT values included, marked).
    List {
        #[command(flatten)]
        format: Format,
    },
    /// Show the challenge answers of NAME.
    Show {
        name: String,
        #[command(flatten)]
        format: Format,
    },
}

pub async fn run(target: &Target, command: AcmeCommand) -> Result<()> {
    match command {
        AcmeCommand::Set { name, txt, cname, ttl, expires } => {
            let (kind, value) = match (txt, cname) {
                (Some(t), _) => (AcmeKind::Txt, t),
                (None, c) => (AcmeKind::Cname, c.unwrap_or_default()),
            };
            let challenge = AcmeChallenge { name: name.clone(), kind, value, ttl, expires_at: None };
            target.set_acme(&challenge, expires).await?;
            println!("_acme-challenge.{} set", name.trim_end_matches('.'));
        }
        AcmeCommand::Rm { name, txt } => {
            let n = target.clear_acme(&name, txt.as_deref()).await?;
            println!("{n} challenge answer(s) removed");
        }
        AcmeCommand::List { format } => {
            emit(format.json, &target.list_acme(None).await?, |list| list.iter().map(line).collect())?
        }
        AcmeCommand::Show { name, format } => {
            emit(format.json, &target.list_acme(Some(&name)).await?, |list| list.iter().map(line).collect())?
        }
    }
    Ok(())
}

fn line(c: &AcmeChallenge) -> String {
    let expiry = match c.expires_at {
        Some(t) if t <= unix_now() => format!("  expired {}", rfc3339(t)),
        Some(t) => format!("  expires {}", rfc3339(t)),
        None => String::new(),
    };
    format!("_acme-challenge.{} {} {} {}{expiry}\n", c.name, c.ttl, c.kind, c.value)
}
