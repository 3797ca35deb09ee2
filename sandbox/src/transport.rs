//! The MTProto transports, told apart from a connection's first bytes as Telegram does:
//!
//! | first bytes                        | transport                                     |
//! |------------------------------------|-----------------------------------------------|
//! | `ef`                               | abridged                                      |
//! | `ee ee ee ee`                      | intermediate                                  |
//! | `dd dd dd dd`                      | padded intermediate                           |
//! | a length, then `00 00 00 00`       | full (length, sequence number, payload, CRC)  |
//! | 64 bytes that are none of those    | obfuscated: AES-256-CTR over one of the first three, whose tag sits at bytes 56..60 once decrypted |
//!
//! A server answers in the transport the client chose. Errors at the transport level (an auth
//! key the server does not know) are a 4-byte negative code sent as a packet of its own.

use grammers_crypto::{DequeBuffer, ObfuscatedCipher};
use grammers_mtproto::transport::{self as mtproto_transport, Full, Transport as _};

/// The framings a client can choose.
enum Framing {
    Full(Full),
    Abridged,
    Intermediate { padded: bool },
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum TransportError {
    #[error("full transport: {0}")]
    Full(#[from] mtproto_transport::Error),
    #[error("packet length {0} is invalid")]
    BadLength(usize),
    #[error("obfuscated header names no transport this server speaks")]
    UnknownObfuscatedTag,
}

/// One connection's transport, once its first bytes chose it.
pub(crate) struct ServerTransport {
    framing: Framing,
    /// The obfuscation keystreams: the client's outgoing one decrypts what we read, its incoming
    /// one encrypts what we write (the roles of grammers' client-side cipher, swapped).
    obfuscation: Option<ObfuscatedCipher>,
}

/// A packet cut out of the read buffer.
pub(crate) struct Unpacked {
    /// Where the payload is in the buffer.
    pub(crate) payload: std::ops::Range<usize>,
    /// How many bytes of the buffer the packet took, framing included.
    pub(crate) consumed: usize,
}

const ABRIDGED: u8 = 0xef;
const INTERMEDIATE: [u8; 4] = [0xee; 4];
const PADDED_INTERMEDIATE: [u8; 4] = [0xdd; 4];
const OBFUSCATED_HEADER: usize = 64;

impl ServerTransport {
    /// Chooses the transport from the first bytes of `buffer` (decrypting the rest of it in
    /// place if it is obfuscated); returns it with how many bytes of the buffer the header took.
    /// `Ok(None)`: not enough bytes yet to tell.
    pub(crate) fn detect(buffer: &mut [u8]) -> Result<Option<(Self, usize)>, TransportError> {
        let plain = |framing| ServerTransport {
            framing,
            obfuscation: None,
        };
        match buffer {
            [] => Ok(None),
            [ABRIDGED, ..] => Ok(Some((plain(Framing::Abridged), 1))),
            [a, b, c, d, ..] if [*a, *b, *c, *d] == INTERMEDIATE => {
                Ok(Some((plain(Framing::Intermediate { padded: false }), 4)))
            }
            [a, b, c, d, ..] if [*a, *b, *c, *d] == PADDED_INTERMEDIATE => {
                Ok(Some((plain(Framing::Intermediate { padded: true }), 4)))
            }
            // The full transport's first packet has sequence number 0.
            [_, _, _, _, 0, 0, 0, 0, ..] => Ok(Some((plain(Framing::Full(Full::new())), 0))),
            _ if buffer.len() < OBFUSCATED_HEADER => Ok(None),
            _ => {
                let mut init = [0; OBFUSCATED_HEADER];
                init.copy_from_slice(&buffer[..OBFUSCATED_HEADER]);
                let mut cipher = ObfuscatedCipher::new(&init);
                // The client encrypted the whole header with its outgoing keystream and sent the
                // last 8 bytes encrypted: running the same keystream over it reveals the tag.
                let mut header = init;
                cipher.encrypt(&mut header);
                let framing = match [header[56], header[57], header[58], header[59]] {
                    [ABRIDGED, ABRIDGED, ABRIDGED, ABRIDGED] => Framing::Abridged,
                    INTERMEDIATE => Framing::Intermediate { padded: false },
                    PADDED_INTERMEDIATE => Framing::Intermediate { padded: true },
                    _ => return Err(TransportError::UnknownObfuscatedTag),
                };
                cipher.encrypt(&mut buffer[OBFUSCATED_HEADER..]);
                Ok(Some((
                    ServerTransport {
                        framing,
                        obfuscation: Some(cipher),
                    },
                    OBFUSCATED_HEADER,
                )))
            }
        }
    }

    /// Makes freshly read bytes readable (decrypts them on an obfuscated connection).
    pub(crate) fn read(&mut self, bytes: &mut [u8]) {
        if let Some(cipher) = &mut self.obfuscation {
            cipher.encrypt(bytes);
        }
    }

    /// The next complete packet at the start of `buffer`; `Ok(None)` if it is not all there.
    pub(crate) fn unpack(&mut self, buffer: &mut [u8]) -> Result<Option<Unpacked>, TransportError> {
        let (header, len) = match &mut self.framing {
            Framing::Full(full) => {
                return match full.unpack(buffer) {
                    Ok(unpacked) => Ok(Some(Unpacked {
                        payload: unpacked.data_range,
                        consumed: unpacked.next_offset,
                    })),
                    Err(mtproto_transport::Error::MissingBytes) => Ok(None),
                    Err(err) => Err(err.into()),
                };
            }
            Framing::Abridged => match buffer {
                [] => return Ok(None),
                [0x7f, a, b, c, ..] => (4, u32::from_le_bytes([*a, *b, *c, 0]) as usize * 4),
                [0x7f, ..] => return Ok(None),
                // The top bit asks for a quick ack, which the sandbox does not send.
                [first, ..] => (1, usize::from(*first & 0x7f) * 4),
            },
            Framing::Intermediate { .. } => match buffer {
                [a, b, c, d, ..] => {
                    // The top bit asks for a quick ack here too.
                    let len = u32::from_le_bytes([*a, *b, *c, *d]) & 0x7fff_ffff;
                    (4, len as usize)
                }
                _ => return Ok(None),
            },
        };
        if len == 0 {
            return Err(TransportError::BadLength(len));
        }
        if buffer.len() < header + len {
            return Ok(None);
        }
        let mut payload_len = len;
        if let Framing::Intermediate { padded: true } = self.framing {
            // 0..15 random bytes follow the payload; an encrypted message is 24 bytes of
            // header and a multiple of 16, which tells where it ends.
            if len < 24 {
                return Err(TransportError::BadLength(len));
            }
            payload_len = len - (len - 24) % 16;
        }
        Ok(Some(Unpacked {
            payload: header..header + payload_len,
            consumed: header + len,
        }))
    }

    /// Frames one payload (and encrypts it on an obfuscated connection).
    pub(crate) fn pack(&mut self, payload: &[u8]) -> Vec<u8> {
        let mut frame = match &mut self.framing {
            Framing::Full(full) => {
                let mut buffer = DequeBuffer::with_capacity(payload.len() + 12, 8);
                buffer.extend(payload.iter().copied());
                full.pack(&mut buffer);
                buffer[..].to_vec()
            }
            Framing::Abridged => {
                let words = payload.len() / 4;
                let mut frame = Vec::with_capacity(payload.len() + 4);
                if words < 0x7f {
                    frame.push(u8::try_from(words).unwrap_or(0x7f));
                } else {
                    frame.push(0x7f);
                    frame.extend_from_slice(&u32::try_from(words).unwrap_or(0).to_le_bytes()[..3]);
                }
                frame.extend_from_slice(payload);
                frame
            }
            Framing::Intermediate { padded } => {
                let padding = if *padded {
                    usize::from(rand::random::<u8>() % 16)
                } else {
                    0
                };
                let len = u32::try_from(payload.len() + padding).unwrap_or(u32::MAX);
                let mut frame = Vec::with_capacity(payload.len() + padding + 4);
                frame.extend_from_slice(&len.to_le_bytes());
                frame.extend_from_slice(payload);
                frame.extend((0..padding).map(|_| rand::random::<u8>()));
                frame
            }
        };
        if let Some(cipher) = &mut self.obfuscation {
            cipher.decrypt(&mut frame);
        }
        frame
    }

    /// A transport-level error code (e.g. -404 for an unknown auth key), as its own packet. The
    /// full transport sends it bare, which is what grammers reads as an error there.
    pub(crate) fn error(&mut self, code: i32) -> Vec<u8> {
        match self.framing {
            Framing::Full(_) => {
                let mut frame = code.to_le_bytes().to_vec();
                if let Some(cipher) = &mut self.obfuscation {
                    cipher.decrypt(&mut frame);
                }
                frame
            }
            _ => self.pack(&code.to_le_bytes()),
        }
    }
}

#[cfg(test)]
mod tests {
    use grammers_mtproto::transport::{Abridged, Intermediate, Obfuscated, Transport};

    use super::*;

    /// What a grammers client-side transport sends for `payload`, read back by the server.
    fn round_trip(mut client: impl Transport, payload: &[u8]) {
        let mut sent = DequeBuffer::with_capacity(payload.len() + 80, 80);
        sent.extend(payload.iter().copied());
        client.pack(&mut sent);
        let mut bytes = sent[..].to_vec();
        let (mut server, header) = ServerTransport::detect(&mut bytes)
            .expect("detects")
            .expect("enough bytes");
        let rest = &mut bytes[header..];
        let unpacked = server.unpack(rest).expect("unpacks").expect("whole");
        assert_eq!(&rest[unpacked.payload], payload);
        assert_eq!(unpacked.consumed, rest.len());

        // And the answer reads back on the client.
        let mut answer = server.pack(payload);
        let offset = client.unpack(&mut answer).expect("client unpacks");
        assert_eq!(&answer[offset.data_range], payload);
    }

    #[test]
    fn every_transport_grammers_speaks_is_detected_and_framed_both_ways() {
        let small = [7u8; 24 + 16];
        let large = [9u8; 24 + 16 * 40];
        for payload in [&small[..], &large[..]] {
            round_trip(Full::new(), payload);
            round_trip(Abridged::new(), payload);
            round_trip(Intermediate::new(), payload);
            round_trip(Obfuscated::new(Abridged::new()), payload);
            round_trip(Obfuscated::new(Intermediate::new()), payload);
        }
    }

    #[test]
    fn padded_intermediate_strips_the_padding() {
        let payload = [5u8; 24 + 32];
        let mut bytes = PADDED_INTERMEDIATE.to_vec();
        bytes.extend_from_slice(
            &u32::try_from(payload.len() + 7)
                .expect("small")
                .to_le_bytes(),
        );
        bytes.extend_from_slice(&payload);
        bytes.extend_from_slice(&[1; 7]);
        let (mut server, header) = ServerTransport::detect(&mut bytes)
            .expect("detects")
            .expect("enough bytes");
        let rest = &mut bytes[header..];
        let unpacked = server.unpack(rest).expect("unpacks").expect("whole");
        assert_eq!(&rest[unpacked.payload], &payload[..]);
        assert_eq!(unpacked.consumed, rest.len());
    }

    #[test]
    fn too_few_bytes_to_tell_wait_for_more() {
        assert!(
            ServerTransport::detect(&mut [0x10, 0, 0])
                .expect("ok")
                .is_none()
        );
        assert!(ServerTransport::detect(&mut [1; 40]).expect("ok").is_none());
    }
}
