//! The sandbox: a small fake Telegram that the REAL, unmodified grammers client talks to over TCP
//! on 127.0.0.1.
//!
//! No machine of this project can reach Telegram, so the integration tests, the benchmarks and
//! `demo` mode run the real client against this server instead. It speaks enough MTProto for
//! grammers 0.11 and Telethon: every transport (told apart by the first bytes), MTProto 2.0
//! encryption with a pre-shared auth key (so no key exchange, which would need Telegram's RSA
//! private key), session housekeeping (salts, msg_id checks, new sessions), `rpc_result` /
//! `rpc_error`, containers, gzip, pings and pushed updates routed per authorization. Accounts can also log in the way a new session
//! does: by phone code, with a 2FA password (SRP, really checked) and by QR code, on a fresh key
//! from [`Sandbox::fresh_session_data`].
//!
//! # Layout
//!
//! * `crypto`: the server side of MTProto 2.0 message encryption (`x = 0` to read what the
//!   client sent, `x = 8` for what we send), on top of grammers-crypto's AES-IGE.
//! * `wire`: the plaintext message layer: envelopes, containers, gzip, `rpc_result`, `pong`,
//!   server message ids and sequence numbers.
//! * `housekeeping`: what Telegram's servers check and say about sessions: server salts
//!   (`bad_server_salt`, `get_future_salts`), the client's `msg_id` window
//!   (`bad_msg_notification`), `new_session_created`, `destroy_session`, duplicates.
//! * `transport`: the MTProto transports (abridged, intermediate, padded intermediate, full,
//!   and obfuscated over the first three), told apart from a connection's first bytes.
//! * `connection`: one task per TCP connection: framing, decryption, answering, pushing.
//! * `channels`: broadcast channels, each with its own pts and message log, and which accounts
//!   joined them: `contacts.resolveUsername` for their usernames, `channels.joinChannel`,
//!   invites, `messages.getHistory`, `channels.getFullChannel` / `getMessages`,
//!   `messages.getDialogs`, `updates.getChannelDifference`, and the control API that posts,
//!   edits and deletes ([`Sandbox::post`] and friends), pushed live to members.
//! * `updates`: an account's common update box: pts-carrying updates (private messages) and
//!   `updates.getDifference` computed from the client's state.
//! * `dispatch`: the RPC methods the sandbox answers; everything else gets
//!   `400 METHOD_NOT_IMPLEMENTED` so a client never hangs. A key logged in to nobody gets
//!   `401 AUTH_KEY_UNREGISTERED` for all but `help.getConfig` and the login methods.
//! * `login`: logins (`auth.sendCode` / `signIn`, `account.getPassword` / `auth.checkPassword`
//!   with server-side SRP, `auth.exportLoginToken` / `importLoginToken`, `auth.logOut`), and the
//!   control API that plays the user's part (reading the code, scanning the QR code).
//! * `world`: the state of the fake Telegram: users, accounts, auth keys (an account's original
//!   pre-shared one plus one per login, or logged in to nobody), contacts, statuses, injected
//!   faults, per-method call counters, live connections (per key), and how pushes are routed
//!   (a copy per authorization).
//! * `sandbox`: [`Sandbox`], the handle that starts the server and that tests and the scenario
//!   player drive.
//! * `session`: building the grammers session that points a client at the sandbox.
//! * [`bot_api`]: a fake Telegram Bot API over HTTP that the real teloxide talks to: incoming
//!   messages for long polling, everything the bot sent, injected errors and 429s.
//!
//! # Example
//!
//! ```no_run
//! # async fn f() -> Result<(), tgwatch_sandbox::SandboxError> {
//! use tgwatch_sandbox::{Sandbox, UserStatus};
//!
//! let sandbox = Sandbox::start().await?;
//! let me = sandbox.add_account(1000, 1, Some("watcher"), "Watcher")?;
//! sandbox.add_user(2000, 42, Some("alice"), "Alice")?;
//! sandbox.add_contact(me, 2000)?;
//! let session = sandbox.session_for(me)?; // give this to grammers' SenderPool
//! sandbox.set_user_status(2000, UserStatus::Online { expires: 0 })?;
//!
//! // A public channel the account joined; the post is pushed to it (or replayed by
//! // updates.getChannelDifference if it is not connected).
//! sandbox.add_channel(1_500_000_000, 7, Some("news"), "News", "All the news")?;
//! sandbox.join(me, 1_500_000_000)?;
//! let posted = sandbox.post(1_500_000_000, "hello")?;
//! # let _ = (session, posted);
//! # Ok(())
//! # }
//! ```

pub mod bot_api;
mod channels;
mod connection;
mod crypto;
mod dispatch;
mod error;
mod housekeeping;
mod login;
mod sandbox;
mod session;
mod transport;
mod updates;
mod wire;
mod world;

pub use bot_api::BotApi;
pub use channels::{MediaKind, Posted};
pub use error::SandboxError;
pub use login::test_dc_code;
pub use sandbox::Sandbox;
pub use world::{AccountId, Ban, Delivery, MessageClock, UserStatus};

/// The DC accounts live in unless moved ([`Sandbox::set_home_dc`]), and where a fresh session
/// starts, as most real accounts do. [`Sandbox::addr`] is its address.
pub const HOME_DC: i32 = 2;

/// The DCs the sandbox runs, each on a port of its own, as Telegram's production DCs 1..=5.
pub const DCS: std::ops::RangeInclusive<i32> = 1..=5;
