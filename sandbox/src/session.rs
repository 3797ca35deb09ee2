//! The grammers session that points a client at the sandbox.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr, SocketAddrV4, SocketAddrV6};

use grammers_session::SessionData;
use grammers_session::types::{DcOption, PeerAuth, PeerId, PeerInfo};

/// Session data for one auth key: its home DC, every DC at its sandbox listener with that key
/// (one key for every DC stands in for the per-DC keys a real client makes by key exchange), and
/// the self user (`(user id, access hash)`) if the key is logged in. A key about to log in has
/// none: grammers caches the self user itself when the login completes.
pub(crate) fn session_data(
    dcs: &BTreeMap<i32, SocketAddr>,
    home_dc: i32,
    auth_key: [u8; 256],
    self_user: Option<(i64, i64)>,
) -> SessionData {
    let mut data = SessionData {
        home_dc,
        ..SessionData::default()
    };
    // Every DC, not just the home one: with a key present grammers skips the key exchange, and
    // a DC left at its default would send the client to the real Telegram.
    for (&id, &addr) in dcs {
        let ipv4 = match addr.ip() {
            IpAddr::V4(ip) => SocketAddrV4::new(ip, addr.port()),
            // The sandbox binds 127.0.0.1; this arm only keeps the function total.
            IpAddr::V6(ip) => SocketAddrV4::new(
                ip.to_ipv4_mapped().unwrap_or(std::net::Ipv4Addr::LOCALHOST),
                addr.port(),
            ),
        };
        let ipv6 = SocketAddrV6::new(ipv4.ip().to_ipv6_mapped(), ipv4.port(), 0, 0);
        data.dc_options.insert(
            id,
            DcOption {
                id,
                ipv4,
                ipv6,
                auth_key: Some(auth_key),
            },
        );
    }

    let Some((user_id, access_hash)) = self_user else {
        return data;
    };
    let me = PeerInfo::User {
        id: user_id,
        auth: Some(PeerAuth::from_hash(access_hash)),
        bot: Some(false),
        is_self: Some(true),
    };
    // MemorySession looks the self user up under the `self_user()` sentinel and does not map it
    // itself (the SQLite storage does), so the info is stored under both keys.
    data.peer_infos.insert(PeerId::self_user(), me.clone());
    if let Some(id) = PeerId::user(user_id) {
        data.peer_infos.insert(id, me);
    }
    data
}
