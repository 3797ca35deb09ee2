//! The server side of MTProto 2.0 message encryption.
//!
//! grammers-crypto only implements the client's directions (it encrypts with `x = 0` and
//! decrypts with `x = 8`), so the server computes `msg_key` and the AES key and IV itself and
//! reuses the public AES-IGE functions. See <https://core.telegram.org/mtproto/description>.

use sha1::{Digest, Sha1};
use sha2::Sha256;

/// Length of `auth_key_id` + `msg_key`, the unencrypted head of every encrypted packet.
const HEADER_LEN: usize = 8 + 16;

/// Which way a message travels; MTProto mixes different parts of the key into each direction.
#[derive(Clone, Copy)]
enum Direction {
    ClientToServer,
    ServerToClient,
}

impl Direction {
    /// "x = 0 for messages from client to server and x = 8 for those from server to client".
    fn x(self) -> usize {
        match self {
            Direction::ClientToServer => 0,
            Direction::ServerToClient => 8,
        }
    }
}

/// Why an encrypted packet could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CryptoError {
    #[error("encrypted packet of {0} bytes is not 24 + a multiple of 16")]
    BadLength(usize),
    #[error("packet encrypted with another auth key")]
    WrongKey,
    #[error("msg_key does not match the decrypted plaintext")]
    BadMsgKey,
}

/// A pre-shared 2048-bit authorization key, as the server holds it.
#[derive(Clone)]
pub(crate) struct ServerKey {
    data: [u8; 256],
    id: [u8; 8],
}

impl ServerKey {
    pub(crate) fn new(data: [u8; 256]) -> Self {
        Self {
            data,
            id: key_id(&data),
        }
    }

    pub(crate) fn data(&self) -> &[u8; 256] {
        &self.data
    }

    pub(crate) fn id(&self) -> [u8; 8] {
        self.id
    }

    /// AES key and IV for one message (MTProto 2.0, "defining AES key and initialization vector").
    fn aes_key_iv(&self, msg_key: &[u8; 16], direction: Direction) -> ([u8; 32], [u8; 32]) {
        let x = direction.x();
        let a: [u8; 32] = Sha256::new()
            .chain_update(msg_key)
            .chain_update(&self.data[x..x + 36])
            .finalize()
            .into();
        let b: [u8; 32] = Sha256::new()
            .chain_update(&self.data[40 + x..40 + x + 36])
            .chain_update(msg_key)
            .finalize()
            .into();

        let mut key = [0; 32];
        key[..8].copy_from_slice(&a[..8]);
        key[8..24].copy_from_slice(&b[8..24]);
        key[24..].copy_from_slice(&a[24..]);

        let mut iv = [0; 32];
        iv[..8].copy_from_slice(&b[..8]);
        iv[8..24].copy_from_slice(&a[8..24]);
        iv[24..].copy_from_slice(&b[24..]);
        (key, iv)
    }

    /// `msg_key = substr(SHA256(substr(auth_key, 88 + x, 32) + plaintext + padding), 8, 16)`.
    fn msg_key(&self, padded_plaintext: &[u8], direction: Direction) -> [u8; 16] {
        let x = direction.x();
        let large: [u8; 32] = Sha256::new()
            .chain_update(&self.data[88 + x..88 + x + 32])
            .chain_update(padded_plaintext)
            .finalize()
            .into();
        let mut msg_key = [0; 16];
        msg_key.copy_from_slice(&large[8..24]);
        msg_key
    }

    /// Decrypts a packet the client sent; returns the padded plaintext
    /// (`salt, session_id, msg_id, seq_no, length, body, padding`).
    pub(crate) fn decrypt_from_client(&self, packet: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if packet.len() < HEADER_LEN + 16 || !(packet.len() - HEADER_LEN).is_multiple_of(16) {
            return Err(CryptoError::BadLength(packet.len()));
        }
        if packet[..8] != self.id {
            return Err(CryptoError::WrongKey);
        }
        let mut msg_key = [0; 16];
        msg_key.copy_from_slice(&packet[8..HEADER_LEN]);

        let (key, iv) = self.aes_key_iv(&msg_key, Direction::ClientToServer);
        let mut plaintext = packet[HEADER_LEN..].to_vec();
        grammers_crypto::aes::ige_decrypt(&mut plaintext, &key, &iv);

        // The security guidelines require checking msg_key against the decrypted data; it also
        // catches a client whose key differs from ours in anything but the id.
        if self.msg_key(&plaintext, Direction::ClientToServer) != msg_key {
            return Err(CryptoError::BadMsgKey);
        }
        Ok(plaintext)
    }

    /// Encrypts a plaintext (`salt, session_id, msg_id, seq_no, length, body`) for the client.
    pub(crate) fn encrypt_for_client(&self, plaintext: &[u8]) -> Vec<u8> {
        // "MTProto 2.0 requires from 12 to 1024 bytes of padding", and the total must be a
        // multiple of 16.
        let padding_len = 12 + (16 - (plaintext.len() + 12) % 16) % 16;
        let mut padded = Vec::with_capacity(HEADER_LEN + plaintext.len() + padding_len);
        padded.extend_from_slice(plaintext);
        padded.resize(plaintext.len() + padding_len, 0);
        rand::Fill::fill(&mut padded[plaintext.len()..], &mut rand::rng());

        let msg_key = self.msg_key(&padded, Direction::ServerToClient);
        let (key, iv) = self.aes_key_iv(&msg_key, Direction::ServerToClient);
        grammers_crypto::aes::ige_encrypt(&mut padded, &key, &iv);

        let mut packet = Vec::with_capacity(HEADER_LEN + padded.len());
        packet.extend_from_slice(&self.id);
        packet.extend_from_slice(&msg_key);
        packet.extend_from_slice(&padded);
        packet
    }
}

/// `auth_key_id`: the 64 lower-order bits of SHA1(auth_key), i.e. bytes 12..20.
pub(crate) fn key_id(data: &[u8; 256]) -> [u8; 8] {
    let sha: [u8; 20] = Sha1::digest(data).into();
    let mut id = [0; 8];
    id.copy_from_slice(&sha[12..20]);
    id
}

/// A fresh random auth key for a new account.
pub(crate) fn random_key() -> [u8; 256] {
    let mut data = [0; 256];
    rand::Fill::fill(&mut data[..], &mut rand::rng());
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The client's own encryption (grammers-crypto, x = 0) must be readable by our decryption,
    /// and our encryption (x = 8) by the client's decryption.
    #[test]
    fn round_trips_with_grammers_crypto() {
        let data = random_key();
        let server = ServerKey::new(data);
        let client = grammers_crypto::AuthKey::from_bytes(data);

        let plaintext: Vec<u8> = (0..64u8).collect();
        let mut buffer = grammers_crypto::DequeBuffer::with_capacity(plaintext.len(), 24);
        buffer.extend(plaintext.iter().copied());
        grammers_crypto::encrypt_data_v2(&mut buffer, &client);
        let decrypted = server.decrypt_from_client(&buffer[..]).expect("decrypts");
        assert_eq!(&decrypted[..plaintext.len()], &plaintext[..]);

        let mut packet = server.encrypt_for_client(&plaintext);
        let decrypted =
            grammers_crypto::decrypt_data_v2(&mut packet, &client).expect("client decrypts");
        assert_eq!(&decrypted[..plaintext.len()], &plaintext[..]);
    }

    #[test]
    fn rejects_a_foreign_key() {
        let server = ServerKey::new(random_key());
        let other = ServerKey::new(random_key());
        let packet = other.encrypt_for_client(&[0; 32]);
        assert!(matches!(
            server.decrypt_from_client(&packet),
            Err(CryptoError::WrongKey)
        ));
    }
}
