//! `/metrics` in the Prometheus text format, and `/health`.

use std::{fmt::Write as _, sync::Arc, sync::atomic::Ordering, time::Duration};

use tokio::{
    io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader},
    net::{TcpListener, TcpStream},
};

use super::handler::Handler;
use crate::store::Store;

/// Closes a connection idle this long.
const IDLE: Duration = Duration::from_secs(30);

pub async fn serve<S: Store>(listener: TcpListener, handler: Arc<Handler<S>>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let handler = handler.clone();
        tokio::spawn(async move {
            let _ = connection(stream, &handler).await;
        });
    }
}

/// HTTP/1.1 with keep-alive: requests are answered in turn until the client closes or
/// goes idle. The server never closes first after answering, so the client's side
/// holds TIME_WAIT and rapid scrapes from one host never collide with it.
async fn connection<S: Store>(stream: TcpStream, handler: &Handler<S>) -> std::io::Result<()> {
    let (reader, mut writer) = stream.into_split();
    let mut reader = BufReader::new(reader);
    loop {
        let mut request_line = String::new();
        match tokio::time::timeout(IDLE, reader.read_line(&mut request_line)).await {
            Ok(Ok(n)) if n > 0 => {}
            _ => return Ok(()),
        }
        // Skip the headers.
        loop {
            let mut line = String::new();
            match tokio::time::timeout(IDLE, reader.read_line(&mut line)).await {
                Ok(Ok(n)) if n > 0 && line != "\r\n" && line != "\n" => continue,
                Ok(Ok(n)) if n > 0 => break,
                _ => return Ok(()),
            }
        }
        let path = request_line.split_whitespace().nth(1).unwrap_or("/");
        let (status, body) = match path {
            "/metrics" => ("200 OK", render(handler)),
            "/health" => ("200 OK", "ok\n".to_owned()),
            _ => ("404 Not Found", "not found\n".to_owned()),
        };
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        writer.write_all(response.as_bytes()).await?;
    }
}

/// The metrics page.
pub fn render<S: Store>(handler: &Handler<S>) -> String {
    let mut out = String::new();
    if let Some(counters) = handler.cache().xdp_counters() {
        out.push_str("# HELP instadns_xdp_packets_total Packets seen by the XDP program, by outcome.\n");
        out.push_str("# TYPE instadns_xdp_packets_total counter\n");
        for (outcome, value) in counters {
            let _ = writeln!(out, "instadns_xdp_packets_total{{outcome=\"{}\"}} {value}", outcome.name());
        }
    }
    let s = &handler.stats;
    out.push_str("# HELP instadns_queries_total Queries answered by userspace, by transport.\n");
    out.push_str("# TYPE instadns_queries_total counter\n");
    let _ = writeln!(out, "instadns_queries_total{{transport=\"udp\"}} {}", s.udp.load(Ordering::Relaxed));
    let _ = writeln!(out, "instadns_queries_total{{transport=\"tcp\"}} {}", s.tcp.load(Ordering::Relaxed));
    out.push_str("# HELP instadns_responses_total Userspace responses by RCODE.\n");
    out.push_str("# TYPE instadns_responses_total counter\n");
    for (rcode, count) in s.rcodes.iter().enumerate() {
        let count = count.load(Ordering::Relaxed);
        if count > 0 {
            let _ =
                writeln!(out, "instadns_responses_total{{rcode=\"{}\"}} {count}", rcode_name(rcode as u16));
        }
    }
    out.push_str(
        "# HELP instadns_userspace_cache_hits_total Userspace answers served from the answer cache.\n",
    );
    out.push_str("# TYPE instadns_userspace_cache_hits_total counter\n");
    let _ = writeln!(out, "instadns_userspace_cache_hits_total {}", s.cache_hits.load(Ordering::Relaxed));
    out.push_str(
        "# HELP instadns_stale_answers_total Expired answers served while the database was unreachable.\n",
    );
    out.push_str("# TYPE instadns_stale_answers_total counter\n");
    let _ = writeln!(out, "instadns_stale_answers_total {}", s.stale.load(Ordering::Relaxed));
    out.push_str("# HELP instadns_truncated_total UDP responses sent truncated (TC).\n");
    out.push_str("# TYPE instadns_truncated_total counter\n");
    let _ = writeln!(out, "instadns_truncated_total {}", s.truncated.load(Ordering::Relaxed));
    out.push_str("# HELP instadns_cache_entries Answers in the userspace answer cache.\n");
    out.push_str("# TYPE instadns_cache_entries gauge\n");
    let _ = writeln!(out, "instadns_cache_entries {}", handler.cache().len());
    out
}

pub fn rcode_name(rcode: u16) -> &'static str {
    match rcode {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        16 => "BADVERS",
        _ => "OTHER",
    }
}
