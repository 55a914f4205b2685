//! `instadns query NAME [TYPE]`: what the server would answer, and why.

use std::str::FromStr as _;

use anyhow::{Context as _, Result};
use clap::Args;
use dns_common::wire::rcode;
use hickory_proto::rr::RecordType;
use instadns::{
    protocol::{encode, parse_user_name},
    resolution::Resolver,
};

use super::{DbArg, output::Usage};

#[derive(Args)]
pub struct QueryArgs {
    /// The query name, e.g. ws-123456.apps.example.com
    name: String,
    /// The query type (A, AAAA, CNAME, TXT, SOA, NS, ANY, ...).
    #[arg(default_value = "A", value_name = "TYPE")]
    qtype: String,
    #[command(flatten)]
    db: DbArg,
}

pub async fn run(args: QueryArgs) -> Result<()> {
    let qtype = RecordType::from_str(&args.qtype.to_ascii_uppercase())
        .map_err(|_| Usage(format!("TYPE: {:?} is not a query type", args.qtype)))?;
    let qname = parse_user_name(&args.name).context("NAME")?;
    let resolver = Resolver::new(args.db.open().await?).await?;
    let res = resolver.explain(&qname, qtype).await?;
    println!(";; {qname} {qtype}: {}", rcode::name(res.rcode));
    for (title, records) in [
        ("ANSWER", &res.sections.answers),
        ("AUTHORITY", &res.sections.authority),
        ("ADDITIONAL", &res.sections.additional),
    ] {
        if !records.is_empty() {
            println!(";; {title}");
            for r in records {
                println!("{r}");
            }
        }
    }
    match res.cache_ttl {
        Some(ttl) => println!(";; cacheable for {ttl}s (served by XDP once asked)"),
        None => println!(";; not cacheable"),
    }
    println!(";; why:");
    for step in &res.trace {
        println!(";;   {step}");
    }
    let encoded =
        encode(&qname, u16::from(qtype), res.rcode, res.authoritative, &res.sections, res.rotate.clone())?;
    println!(";; {} bytes after the question", encoded.data.len());
    Ok(())
}
