//! Connections counted per peer address, so that no one caller takes every connection a
//! server allows (the master's REST server and a worker's gRPC port both cap them).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Connections open per peer address.
#[derive(Clone, Default)]
pub(crate) struct Peers(Arc<Mutex<HashMap<IpAddr, usize>>>);

/// One connection's place in its peer's count, given back when dropped.
pub(crate) struct PeerSlot {
    peers: Peers,
    ip: IpAddr,
}

impl Peers {
    /// A place for one more connection from `ip`, if it has fewer than `max`.
    pub(crate) fn take(&self, ip: IpAddr, max: usize) -> Option<PeerSlot> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(PeerSlot {
            peers: self.clone(),
            ip,
        })
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut map = self.peers.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_holds_at_most_its_share_and_gets_it_back() {
        let peers = Peers::default();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let other: IpAddr = "127.0.0.2".parse().unwrap();
        let held: Vec<PeerSlot> = (0..3).map(|_| peers.take(ip, 3).unwrap()).collect();
        assert!(peers.take(ip, 3).is_none());
        assert!(
            peers.take(other, 3).is_some(),
            "another address is not limited by it"
        );
        drop(held);
        let one = peers.take(ip, 3).unwrap();
        assert_eq!(peers.0.lock().unwrap().get(&ip), Some(&1));
        drop(one);
        assert_eq!(
            peers.0.lock().unwrap().get(&ip),
            None,
            "no entry left behind"
        );
    }
}
