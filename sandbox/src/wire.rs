//! The plaintext MTProto message layer: what sits inside an encrypted packet.
//!
//! ```text
//! salt:long session_id:long msg_id:long seq_no:int length:int body:bytes[length] padding
//! ```
//!
//! grammers parses `msg_container`, `gzip_packed` and `rpc_result` by hand (they are commented
//! out of its TL schema), so this module does the same for the server's side.

use std::io::Read;
use std::time::{SystemTime, UNIX_EPOCH};

use grammers_tl_types::{self as tl, Cursor, Deserializable, Serializable};

/// `msg_container#73f1f8dc messages:vector<message> = MessageContainer;`
pub(crate) const MSG_CONTAINER: u32 = 0x73f1_f8dc;
/// `gzip_packed#3072cfa1 packed_data:bytes = Object;`
pub(crate) const GZIP_PACKED: u32 = 0x3072_cfa1;
/// `rpc_result#f35c6d01 req_msg_id:long result:Object = RpcResult;`
const RPC_RESULT: u32 = 0xf35c_6d01;

/// A decompressed request larger than this is refused: no legitimate request comes close, and a
/// bug must not make the sandbox allocate without bound.
const MAX_UNPACKED: u64 = 16 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub(crate) enum WireError {
    #[error("message truncated")]
    Truncated,
    #[error("message length {0} is invalid")]
    BadLength(i32),
    #[error("bad TL in a service message: {0}")]
    Tl(#[from] tl::deserialize::Error),
    #[error("gzip_packed could not be inflated: {0}")]
    Gzip(#[source] std::io::Error),
    #[error("gzip_packed inflates to more than {MAX_UNPACKED} bytes")]
    GzipTooLarge,
    #[error("containers nested deeper than allowed")]
    TooDeep,
}

/// One message as the client sent it (possibly one of a container's).
#[derive(Debug, Clone)]
pub(crate) struct Message {
    pub(crate) msg_id: i64,
    pub(crate) seq_no: i32,
    pub(crate) body: Vec<u8>,
}

impl Message {
    /// The constructor id leading the body (0 for an empty body, which no constructor uses).
    pub(crate) fn constructor(&self) -> u32 {
        constructor_of(&self.body)
    }
}

/// The leading constructor id of serialized TL (0 if there are fewer than 4 bytes).
pub(crate) fn constructor_of(body: &[u8]) -> u32 {
    match body.get(..4) {
        Some(head) => u32::from_le_bytes([head[0], head[1], head[2], head[3]]),
        None => 0,
    }
}

/// A decrypted packet: whose session it belongs to and the message it carries.
pub(crate) struct Envelope {
    pub(crate) salt: i64,
    pub(crate) session_id: i64,
    pub(crate) message: Message,
}

/// Splits a decrypted packet into its envelope. The padding after the body is ignored.
pub(crate) fn parse_plaintext(plaintext: &[u8]) -> Result<Envelope, WireError> {
    let mut cursor = Cursor::from_slice(plaintext);
    let salt = i64::deserialize(&mut cursor)?;
    let session_id = i64::deserialize(&mut cursor)?;
    let message = read_message(&mut cursor)?;
    Ok(Envelope {
        salt,
        session_id,
        message,
    })
}

/// Reads `msg_id:long seq_no:int bytes:int body`.
fn read_message(cursor: &mut Cursor) -> Result<Message, WireError> {
    let msg_id = i64::deserialize(cursor)?;
    let seq_no = i32::deserialize(cursor)?;
    let len = i32::deserialize(cursor)?;
    let size = usize::try_from(len).map_err(|_| WireError::BadLength(len))?;
    if size % 4 != 0 {
        return Err(WireError::BadLength(len));
    }
    let mut body = vec![0; size];
    cursor
        .read_exact(&mut body)
        .map_err(|_| WireError::Truncated)?;
    Ok(Message {
        msg_id,
        seq_no,
        body,
    })
}

/// Flattens a message into the messages to act on: unwraps `msg_container` and `gzip_packed`
/// (grammers gzips any request of 512 bytes or more and bundles queued requests, acks and pings
/// into containers). Each request keeps its own `msg_id`, which the answer must name.
pub(crate) fn flatten(message: Message) -> Result<Vec<Message>, WireError> {
    let mut out = Vec::new();
    flatten_into(message, 0, &mut out)?;
    Ok(out)
}

fn flatten_into(message: Message, depth: u8, out: &mut Vec<Message>) -> Result<(), WireError> {
    // A container holds plain messages and gzip holds one object; a couple of levels is all a
    // real client produces.
    if depth > 3 {
        return Err(WireError::TooDeep);
    }
    match message.constructor() {
        MSG_CONTAINER => {
            let mut cursor = Cursor::from_slice(&message.body[4..]);
            let count = i32::deserialize(&mut cursor)?;
            for _ in 0..count.max(0) {
                flatten_into(read_message(&mut cursor)?, depth + 1, out)?;
            }
        }
        GZIP_PACKED => {
            let packed = Vec::<u8>::deserialize(&mut Cursor::from_slice(&message.body[4..]))?;
            let body = gunzip(&packed)?;
            flatten_into(
                Message {
                    msg_id: message.msg_id,
                    seq_no: message.seq_no,
                    body,
                },
                depth + 1,
                out,
            )?;
        }
        _ => out.push(message),
    }
    Ok(())
}

fn gunzip(packed: &[u8]) -> Result<Vec<u8>, WireError> {
    let mut body = Vec::new();
    flate2::read::GzDecoder::new(packed)
        .take(MAX_UNPACKED + 1)
        .read_to_end(&mut body)
        .map_err(WireError::Gzip)?;
    if body.len() as u64 > MAX_UNPACKED {
        return Err(WireError::GzipTooLarge);
    }
    Ok(body)
}

/// Strips the constructor id of a function call and parses its arguments.
pub(crate) fn parse_call<T: Deserializable>(body: &[u8]) -> Result<T, tl::deserialize::Error> {
    let mut cursor = Cursor::from_slice(body.get(4..).unwrap_or_default());
    T::deserialize(&mut cursor)
}

/// The rest of a buffer, unparsed: the `query:!X` of the `invokeWith*` / `initConnection`
/// wrappers, which is always their last field.
pub(crate) struct Tail(pub(crate) Vec<u8>);

impl Deserializable for Tail {
    fn deserialize(buf: &mut Cursor) -> tl::deserialize::Result<Self> {
        let mut rest = Vec::new();
        buf.read_to_end(&mut rest)?;
        Ok(Tail(rest))
    }
}

/// `rpc_result` answering the request `req_msg_id` with already serialized `result`.
pub(crate) fn rpc_result(req_msg_id: i64, result: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(12 + result.len());
    RPC_RESULT.serialize(&mut body);
    req_msg_id.serialize(&mut body);
    body.extend_from_slice(result);
    body
}

/// `rpc_error` as the `result` of an `rpc_result`.
pub(crate) fn rpc_error(code: i32, message: &str) -> Vec<u8> {
    tl::enums::RpcError::Error(tl::types::RpcError {
        error_code: code,
        error_message: message.to_owned(),
    })
    .to_bytes()
}

/// `pong`, sent as a top-level message (not in an `rpc_result`): grammers matches it to the ping
/// by its `msg_id` field.
pub(crate) fn pong(req_msg_id: i64, ping_id: i64) -> Vec<u8> {
    tl::enums::Pong::Pong(tl::types::Pong {
        msg_id: req_msg_id,
        ping_id,
    })
    .to_bytes()
}

/// `bad_msg_notification`: the client's message `bad_msg_id` was refused with `code` (see
/// `crate::housekeeping`).
pub(crate) fn bad_msg_notification(bad_msg_id: i64, bad_msg_seqno: i32, code: i32) -> Vec<u8> {
    tl::enums::BadMsgNotification::Notification(tl::types::BadMsgNotification {
        bad_msg_id,
        bad_msg_seqno,
        error_code: code,
    })
    .to_bytes()
}

/// `bad_server_salt`: the message carried a wrong salt; resend it with `new_server_salt`.
pub(crate) fn bad_server_salt(
    bad_msg_id: i64,
    bad_msg_seqno: i32,
    new_server_salt: i64,
) -> Vec<u8> {
    tl::enums::BadMsgNotification::BadServerSalt(tl::types::BadServerSalt {
        bad_msg_id,
        bad_msg_seqno,
        error_code: 48,
        new_server_salt,
    })
    .to_bytes()
}

/// `new_session_created`, sent before anything else in a session the server did not know.
pub(crate) fn new_session_created(first_msg_id: i64, unique_id: i64, server_salt: i64) -> Vec<u8> {
    tl::enums::NewSession::Created(tl::types::NewSessionCreated {
        first_msg_id,
        unique_id,
        server_salt,
    })
    .to_bytes()
}

/// `future_salts`, a top-level answer (not in an `rpc_result`) to `get_future_salts`.
pub(crate) fn future_salts(req_msg_id: i64, now: i32, salts: &[(i32, i32, i64)]) -> Vec<u8> {
    tl::enums::FutureSalts::Salts(tl::types::FutureSalts {
        req_msg_id,
        now,
        salts: tl::RawVec(
            salts
                .iter()
                .map(|&(valid_since, valid_until, salt)| tl::types::FutureSalt {
                    valid_since,
                    valid_until,
                    salt,
                })
                .collect(),
        ),
    })
    .to_bytes()
}

/// `destroy_session_ok` or `destroy_session_none`, a top-level answer to `destroy_session`.
pub(crate) fn destroy_session_result(session_id: i64, existed: bool) -> Vec<u8> {
    if existed {
        tl::enums::DestroySessionRes::DestroySessionOk(tl::types::DestroySessionOk { session_id })
            .to_bytes()
    } else {
        tl::enums::DestroySessionRes::DestroySessionNone(tl::types::DestroySessionNone {
            session_id,
        })
        .to_bytes()
    }
}

/// What an outgoing message is, which decides the low bits of its `msg_id`.
#[derive(Clone, Copy)]
pub(crate) enum Outgoing {
    /// A response to a client message (`msg_id % 4 == 1`).
    Response,
    /// A message the server sends on its own, such as pushed updates (`msg_id % 4 == 3`).
    Push,
}

/// The server's half of one session: message ids and sequence numbers for what it sends.
pub(crate) struct Outbox {
    session_id: i64,
    last_msg_id: i64,
    content_messages: i32,
}

impl Outbox {
    pub(crate) fn new(session_id: i64) -> Self {
        Self {
            session_id,
            last_msg_id: 0,
            content_messages: 0,
        }
    }

    /// The session id to echo: grammers panics ("wrong session id") on any other.
    pub(crate) fn session_id(&self) -> i64 {
        self.session_id
    }

    /// Server message ids are about `unix_time * 2^32`, strictly increasing, and `1 mod 4` for
    /// responses or `3 mod 4` for other messages.
    fn next_msg_id(&mut self, kind: Outgoing) -> i64 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let secs = i64::try_from(now.as_secs()).unwrap_or(0);
        let nanos = i64::from(now.subsec_nanos());
        let mut id = (secs << 32) | (nanos << 2);
        if id <= self.last_msg_id {
            id = self.last_msg_id + 1;
        }
        let wanted = match kind {
            Outgoing::Response => 1,
            Outgoing::Push => 3,
        };
        while id.rem_euclid(4) != wanted {
            id += 1;
        }
        self.last_msg_id = id;
        id
    }

    /// Content-related messages (all the sandbox sends) get odd, increasing sequence numbers.
    fn next_seq_no(&mut self) -> i32 {
        let seq = self.content_messages * 2 + 1;
        self.content_messages += 1;
        seq
    }

    /// The plaintext of one message carrying `body` under the server salt `salt`, ready to be
    /// encrypted.
    pub(crate) fn seal(&mut self, body: &[u8], kind: Outgoing, salt: i64) -> Vec<u8> {
        let msg_id = self.next_msg_id(kind);
        let seq_no = self.next_seq_no();
        let len = i32::try_from(body.len()).unwrap_or(i32::MAX);
        let mut plaintext = Vec::with_capacity(32 + body.len());
        salt.serialize(&mut plaintext);
        self.session_id.serialize(&mut plaintext);
        msg_id.serialize(&mut plaintext);
        seq_no.serialize(&mut plaintext);
        len.serialize(&mut plaintext);
        plaintext.extend_from_slice(body);
        plaintext
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn message(msg_id: i64, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        msg_id.serialize(&mut out);
        1i32.serialize(&mut out);
        (body.len() as i32).serialize(&mut out);
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn flattens_containers_and_gzip() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&[7, 7, 7, 7]).expect("gzip");
        let packed = gz.finish().expect("gzip");
        let mut gzip_body = Vec::new();
        GZIP_PACKED.serialize(&mut gzip_body);
        packed.serialize(&mut gzip_body);

        let mut container = Vec::new();
        MSG_CONTAINER.serialize(&mut container);
        2i32.serialize(&mut container);
        container.extend(message(4, &[1, 2, 3, 4]));
        container.extend(message(8, &gzip_body));

        let flat = flatten(Message {
            msg_id: 12,
            seq_no: 1,
            body: container,
        })
        .expect("flattens");
        assert_eq!(flat.len(), 2);
        assert_eq!((flat[0].msg_id, &flat[0].body[..]), (4, &[1, 2, 3, 4][..]));
        assert_eq!((flat[1].msg_id, &flat[1].body[..]), (8, &[7, 7, 7, 7][..]));
    }

    #[test]
    fn message_ids_increase_with_the_right_parity() {
        let mut outbox = Outbox::new(5);
        let a = outbox.next_msg_id(Outgoing::Response);
        let b = outbox.next_msg_id(Outgoing::Push);
        let c = outbox.next_msg_id(Outgoing::Response);
        assert!(a < b && b < c);
        assert_eq!((a % 4, b % 4, c % 4), (1, 3, 1));
    }
}
