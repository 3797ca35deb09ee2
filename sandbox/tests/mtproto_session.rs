//! grammers' own MTProto layer (grammers-mtproto: its encryption, salts, msg_ids and every
//! client transport it has) against the sandbox over TCP: the transports Telegram tells apart by
//! their first bytes, and the session housekeeping Telegram's servers do (wrong salt, skewed
//! clock, future salts).

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod support;

use grammers_client::tl::{self, Deserializable, Serializable};
use grammers_crypto::DequeBuffer;
use grammers_mtproto::mtp::{Deserialization, Encrypted, Mtp};
use grammers_mtproto::transport::{Abridged, Full, Intermediate, Obfuscated, Transport};
use sha1::Digest;
use support::within;
use tgwatch_sandbox::Sandbox;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One MTProto connection made of grammers' parts, driven by hand.
struct RawClient<T: Transport> {
    stream: TcpStream,
    transport: T,
    mtp: Encrypted,
    read: Vec<u8>,
}

/// What one call went through before its answer.
struct Answered {
    /// The `bad_msg_notification` codes met on the way (each followed by a resend).
    refusals: Vec<i32>,
    body: Vec<u8>,
}

impl<T: Transport> RawClient<T> {
    async fn connect(sandbox: &Sandbox, transport: T, mtp: Encrypted) -> Self {
        let stream = TcpStream::connect(sandbox.addr()).await.expect("connects");
        RawClient {
            stream,
            transport,
            mtp,
            read: Vec::new(),
        }
    }

    /// Sends `request` until it is answered, resending after each refusal as grammers' sender
    /// does; `Err` with the refusals after five sends.
    async fn try_call(&mut self, request: &[u8]) -> Result<Answered, Vec<i32>> {
        let mut refusals = Vec::new();
        'send: for _ in 0..5 {
            let mut buffer = DequeBuffer::with_capacity(request.len() + 256, 64);
            // grammers holds requests back while it waits for the future salts it asked for.
            let sent = loop {
                if let Some(sent) = self.mtp.push(&mut buffer, request) {
                    break sent;
                }
                self.flush(&mut buffer).await;
                self.next_messages().await;
            };
            let container = self.flush(&mut buffer).await;
            loop {
                for answer in self.next_messages().await {
                    match answer {
                        Deserialization::RpcResult(result) if result.msg_id == sent => {
                            return Ok(Answered {
                                refusals,
                                body: result.body,
                            });
                        }
                        Deserialization::BadMessage(bad)
                            if bad.msg_id == sent || Some(bad.msg_id) == container =>
                        {
                            refusals.push(bad.code);
                            continue 'send;
                        }
                        _ => {}
                    }
                }
            }
        }
        Err(refusals)
    }

    async fn call(&mut self, request: &[u8]) -> Answered {
        self.try_call(request)
            .await
            .unwrap_or_else(|refusals| panic!("no answer after five sends: {refusals:?}"))
    }

    /// Finalizes, frames and writes what `buffer` holds; the id of the last message (or of the
    /// container) it sent.
    async fn flush(&mut self, buffer: &mut DequeBuffer<u8>) -> Option<grammers_mtproto::MsgId> {
        let last = self.mtp.finalize(buffer);
        if buffer.is_empty() {
            return last;
        }
        self.transport.pack(buffer);
        self.stream.write_all(&buffer[..]).await.expect("writes");
        buffer.clear();
        last
    }

    /// Reads until at least one packet decrypts, and returns what it held.
    async fn next_messages(&mut self) -> Vec<Deserialization> {
        loop {
            match self.transport.unpack(&mut self.read) {
                Ok(offset) => {
                    let mut payload = self.read[offset.data_range].to_vec();
                    self.read.drain(..offset.next_offset);
                    return self.mtp.deserialize(&mut payload).expect("a valid message");
                }
                Err(grammers_mtproto::transport::Error::MissingBytes) => {
                    let mut chunk = [0; 4096];
                    let n = within("the server's answer", self.stream.read(&mut chunk))
                        .await
                        .expect("reads");
                    assert!(n > 0, "the server closed the connection");
                    self.read.extend_from_slice(&chunk[..n]);
                }
                Err(err) => panic!("transport error: {err}"),
            }
        }
    }
}

/// A sandbox with one account, whose auth key grammers can use over every transport.
///
/// grammers' abridged and intermediate transports read any packet whose first four bytes are a
/// negative number as a transport error (Telegram's error packets are exactly four bytes long).
/// An encrypted packet starts with the auth key id, so with about half of all keys those two
/// transports fail, against Telegram as against the sandbox. tgwatch uses the full transport.
async fn sandbox_with_account() -> (Sandbox, [u8; 256]) {
    let sandbox = Sandbox::start().await.expect("sandbox starts");
    for user_id in 1000.. {
        let account = sandbox
            .add_account(user_id, 1, None, "Watcher")
            .expect("account");
        let key = sandbox.auth_key(account).expect("key");
        let digest = sha1::Sha1::digest(key);
        let key_id_head = i32::from_le_bytes([digest[12], digest[13], digest[14], digest[15]]);
        if key_id_head >= 0 {
            return (sandbox, key);
        }
    }
    unreachable!("half of all keys qualify")
}

fn get_config() -> Vec<u8> {
    tl::functions::help::GetConfig {}.to_bytes()
}

async fn config_over<T: Transport>(transport: T) -> Vec<i32> {
    let (sandbox, key) = sandbox_with_account().await;
    let mut client = RawClient::connect(&sandbox, transport, Encrypted::build().finish(key)).await;
    let answered = client.call(&get_config()).await;
    let tl::enums::Config::Config(config) =
        tl::enums::Config::from_bytes(&answered.body).expect("a Config");
    assert_eq!(config.this_dc, tgwatch_sandbox::HOME_DC);
    // And a second call on the same connection, with the salt learnt.
    let again = client.call(&get_config()).await;
    assert!(again.refusals.is_empty(), "{:?}", again.refusals);
    answered.refusals
}

#[tokio::test]
async fn every_transport_is_told_apart_by_its_first_bytes() {
    // A client's first message carries salt 0: the server answers bad_server_salt (48) with
    // the right one, and the resend goes through.
    assert_eq!(config_over(Full::new()).await, [48]);
    assert_eq!(config_over(Abridged::new()).await, [48]);
    assert_eq!(config_over(Intermediate::new()).await, [48]);
    assert_eq!(config_over(Obfuscated::new(Abridged::new())).await, [48]);
    assert_eq!(
        config_over(Obfuscated::new(Intermediate::new())).await,
        [48]
    );
}

#[tokio::test]
async fn a_client_clock_an_hour_off_is_told_so() {
    // An hour slow: bad_msg_notification 16; grammers takes the server's time from the
    // notification's msg_id, resends, then meets the salt.
    let (sandbox, key) = sandbox_with_account().await;
    let mtp = Encrypted::build().time_offset(-3600).finish(key);
    let mut client = RawClient::connect(&sandbox, Full::new(), mtp).await;
    let answered = client.call(&get_config()).await;
    assert_eq!(answered.refusals, [16, 48]);
    tl::enums::Config::from_bytes(&answered.body).expect("a Config");

    // An hour fast: 17, again and again. grammers corrects its offset but never lets a msg_id
    // go below the last one it used, so its resends stay an hour ahead: real Telegram refuses
    // them the same way (this is grammers' limit, not the sandbox's).
    let mtp = Encrypted::build().time_offset(3600).finish(key);
    let mut client = RawClient::connect(&sandbox, Full::new(), mtp).await;
    let refusals = client.try_call(&get_config()).await.err().expect("refused");
    assert_eq!(refusals, [17; 5]);
}

#[tokio::test]
async fn future_salts_are_handed_out_and_each_is_accepted() {
    let (sandbox, key) = sandbox_with_account().await;
    let mut client =
        RawClient::connect(&sandbox, Full::new(), Encrypted::build().finish(key)).await;
    let answered = client
        .call(&tl::functions::GetFutureSalts { num: 3 }.to_bytes())
        .await;
    let tl::enums::FutureSalts::Salts(salts) =
        tl::enums::FutureSalts::from_bytes(&answered.body).expect("future_salts");
    assert_eq!(salts.salts.0.len(), 3);
    let first = &salts.salts.0[0];
    assert!(first.valid_since <= salts.now && salts.now < first.valid_until);
    assert!(
        salts
            .salts
            .0
            .windows(2)
            .all(|w| w[0].valid_until == w[1].valid_since)
    );

    // A new session that starts with the current salt is not refused.
    let mtp = Encrypted::build().first_salt(first.salt).finish(key);
    let mut fresh = RawClient::connect(&sandbox, Full::new(), mtp).await;
    assert!(fresh.call(&get_config()).await.refusals.is_empty());
}
