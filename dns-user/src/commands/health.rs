//! `instadns health`: the running daemon's view of its health-checked addresses, read
//! from its metrics listener.

use std::{net::SocketAddr, time::Duration};

use anyhow::{Context as _, Result, bail};
use clap::Args;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _};

#[derive(Args)]
pub struct HealthArgs {
    /// The daemon's metrics address (its `metrics` setting).
    #[arg(long, default_value = "127.0.0.1:9153")]
    metrics: SocketAddr,
}

/// How long the daemon may take to answer, and the most it may send.
const TIMEOUT: Duration = Duration::from_secs(5);
const MAX_RESPONSE: u64 = 4 << 20;

pub async fn run(args: HealthArgs) -> Result<()> {
    let metrics = args.metrics;
    let exchange = async {
        let stream = tokio::net::TcpStream::connect(metrics).await.with_context(|| {
            format!("connecting to the daemon's metrics address {metrics} (is `instadns serve` running with metrics = \"{metrics}\"?)")
        })?;
        let (reader, mut writer) = stream.into_split();
        writer
            .write_all(b"GET /health/targets HTTP/1.1\r\nHost: instadns\r\nConnection: close\r\n\r\n")
            .await?;
        // The head, then exactly Content-Length bytes of body.
        let mut reader = tokio::io::BufReader::new(reader.take(MAX_RESPONSE));
        let mut length = None;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).await? == 0 {
                bail!("the daemon at {metrics} closed the connection before its answer");
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse::<usize>().ok();
            }
            if line == "\r\n" || line == "\n" {
                break;
            }
        }
        let length = length.with_context(|| format!("the daemon at {metrics} sent no Content-Length"))?;
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body).await?;
        anyhow::Ok(body)
    };
    let body = match tokio::time::timeout(TIMEOUT, exchange).await {
        Ok(r) => r?,
        Err(_) => bail!("the daemon at {metrics} did not answer within {} s", TIMEOUT.as_secs()),
    };
    print!("{}", String::from_utf8_lossy(&body));
    Ok(())
}
