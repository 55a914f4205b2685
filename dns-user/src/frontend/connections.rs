//! Who holds a connection: a table of open connections with a cap per client network
//! and a cap in all. A connection over a cap does not lock others out: it replaces the
//! connection of the same network (or, at the total cap, of anyone) that has made no
//! progress for longest (RFC 7766 section 6.2.2 lets a server close idle connections
//! under pressure). Progress is a whole message read or a whole response written, so a
//! client that trickles a byte a second or never reads is the first to go.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};

use tokio::sync::Notify;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Open connections in all.
    pub max_total: usize,
    /// Open connections of one client network (an IPv4 address, an IPv6 /64).
    pub max_per_client: usize,
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct ConnectionStats {
    pub admitted: AtomicU64,
    /// Closed to make room for a newer connection.
    pub evicted: AtomicU64,
}

pub struct Registry {
    limits: ConnectionLimits,
    epoch: Instant,
    inner: Mutex<Table>,
    pub stats: ConnectionStats,
}

#[derive(Default)]
struct Table {
    next_id: u64,
    open: HashMap<u64, Entry>,
    per_client: HashMap<IpAddr, usize>,
}

struct Entry {
    client: IpAddr,
    progress: Arc<AtomicU64>,
    close: Arc<Notify>,
}

/// A connection's place in the table; dropping it frees the place.
pub struct Admitted {
    id: u64,
    registry: Arc<Registry>,
    progress: Arc<AtomicU64>,
    close: Arc<Notify>,
}

impl Registry {
    pub fn new(limits: ConnectionLimits) -> Arc<Self> {
        Arc::new(Self {
            limits: ConnectionLimits {
                max_total: limits.max_total.max(1),
                max_per_client: limits.max_per_client.max(1),
            },
            epoch: Instant::now(),
            inner: Mutex::new(Table::default()),
            stats: ConnectionStats::default(),
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.table().open.len()
    }

    /// Admits a connection from `client`, closing the stalest one of its network or of
    /// all when a cap is reached.
    pub fn admit(self: &Arc<Self>, client: IpAddr) -> Admitted {
        let network = client_network(client);
        let now = self.now();
        let mut table = self.table();
        if table.per_client.get(&network).copied().unwrap_or(0) >= self.limits.max_per_client {
            table.evict_stalest(|e| e.client == network, &self.stats);
        } else if table.open.len() >= self.limits.max_total {
            table.evict_stalest(|_| true, &self.stats);
        }
        let id = table.next_id;
        table.next_id += 1;
        let (progress, close) = (Arc::new(AtomicU64::new(now)), Arc::new(Notify::new()));
        table.open.insert(id, Entry { client: network, progress: progress.clone(), close: close.clone() });
        *table.per_client.entry(network).or_default() += 1;
        drop(table);
        self.stats.admitted.fetch_add(1, Ordering::Relaxed);
        Admitted { id, registry: self.clone(), progress, close }
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        // The table stays consistent at every unlock: a panic elsewhere does not poison it.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Table {
    fn evict_stalest(&mut self, eligible: impl Fn(&Entry) -> bool, stats: &ConnectionStats) {
        let stalest = self
            .open
            .iter()
            .filter(|(_, e)| eligible(e))
            .min_by_key(|(id, e)| (e.progress.load(Ordering::Relaxed), **id))
            .map(|(id, _)| *id);
        if let Some(id) = stalest {
            self.remove(id);
            stats.evicted.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn remove(&mut self, id: u64) {
        let Some(entry) = self.open.remove(&id) else { return };
        if let Some(n) = self.per_client.get_mut(&entry.client) {
            *n -= 1;
            if *n == 0 {
                self.per_client.remove(&entry.client);
            }
        }
        // notify_one keeps the wake-up for a connection not yet waiting.
        entry.close.notify_one();
    }
}

impl Admitted {
    /// The connection made progress: a message in or a response out.
    pub fn progressed(&self) {
        self.progress.store(self.registry.now(), Ordering::Relaxed);
    }

    /// Resolves when the connection was chosen to make room for another.
    pub async fn evicted(&self) {
        self.close.notified().await;
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.registry.table().remove(self.id);
    }
}

/// Accepts connections on `listener` for as long as the task runs, each served by
/// `serve` in its own task that holds its place in a [`Registry`] with `limits` and
/// ends when the place is taken by a newer connection.
pub async fn accept_each<F, Fut>(listener: tokio::net::TcpListener, limits: ConnectionLimits, serve: F)
where
    F: Fn(tokio::net::TcpStream, std::net::SocketAddr, Arc<Admitted>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let registry = Registry::new(limits);
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            // Out of file descriptors and the like: let them free up.
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            continue;
        };
        let place = Arc::new(registry.admit(peer.ip()));
        let served = serve(stream, peer, place.clone());
        tokio::spawn(async move {
            tokio::select! {
                () = place.evicted() => {}
                () = served => {}
            }
        });
    }
}

/// The network a client's connections are counted under: IPv4 addresses one by one,
/// IPv6 by /64 (one host can hold a whole /64).
fn client_network(client: IpAddr) -> IpAddr {
    match client.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry(max_total: usize, max_per_client: usize) -> Arc<Registry> {
        Registry::new(ConnectionLimits { max_total, max_per_client })
    }

    #[tokio::test]
    async fn a_client_at_its_cap_replaces_its_own_stalest_connection() {
        let r = registry(100, 2);
        let a: IpAddr = "198.18.0.2".parse().unwrap();
        let b: IpAddr = "198.18.0.3".parse().unwrap();
        let first = r.admit(a);
        let other = r.admit(b);
        std::thread::sleep(std::time::Duration::from_millis(5));
        let second = r.admit(a);
        std::thread::sleep(std::time::Duration::from_millis(5));
        first.progressed(); // now the first is fresher than the second
        let _third = r.admit(a);
        assert_eq!(r.open(), 3);
        tokio::time::timeout(std::time::Duration::from_secs(1), second.evicted()).await.unwrap();
        assert!(tokio::time::timeout(std::time::Duration::from_millis(20), other.evicted()).await.is_err());
        assert!(tokio::time::timeout(std::time::Duration::from_millis(20), first.evicted()).await.is_err());
        assert_eq!(r.stats.evicted.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn at_the_total_cap_the_stalest_of_anyone_goes() {
        let r = registry(2, 10);
        let old = r.admit("198.18.0.2".parse().unwrap());
        std::thread::sleep(std::time::Duration::from_millis(5));
        let _fresh = r.admit("198.18.0.3".parse().unwrap());
        let _newest = r.admit("198.18.0.4".parse().unwrap());
        tokio::time::timeout(std::time::Duration::from_secs(1), old.evicted()).await.unwrap();
        assert_eq!(r.open(), 2);
        drop(old); // an evicted connection's drop does not free another's place
        assert_eq!(r.open(), 2);
    }

    #[test]
    fn ipv6_clients_are_counted_by_64() {
        let r = registry(100, 1);
        let _a = r.admit("fd00:53::1".parse().unwrap());
        let _b = r.admit("fd00:53::2".parse().unwrap());
        assert_eq!(r.stats.evicted.load(Ordering::Relaxed), 1);
        let _c = r.admit("fd00:53:0:1::1".parse().unwrap());
        assert_eq!(r.stats.evicted.load(Ordering::Relaxed), 1);
        assert_eq!(r.open(), 2);
    }
}
