//! Secrets at rest: Telegram sessions, api_hash and 2FA hints are sealed before they reach the
//! database, so that a copy of the database alone reveals no auth key.
//!
//! Sealing is XChaCha20-Poly1305 (an AEAD whose 192-bit random nonces never need a counter)
//! under a 256-bit master key. The master key comes from `TGWATCH_MASTER_KEY` (base64 or hex) or
//! from a key file that `tgwatch` creates with mode 0600 on first run.
//!
//! A sealed value is `b"tgv1" || key id (8) || nonce (24) || ciphertext+tag`. The key id (a hash
//! of the key, not the key) says which key sealed it, so that a rotation interrupted between
//! re-encrypting the rows and replacing the key file can be finished by a later start: the vault
//! then holds both keys and opens each value with the right one. The associated data names the
//! row and column a value belongs to, so a sealed value moved to another row does not open.

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use base64::{Engine, engine::general_purpose::STANDARD};
use chacha20poly1305::{
    KeyInit, XChaCha20Poly1305, XNonce,
    aead::{Aead, Payload},
};
use sha2::{Digest, Sha256};

const MAGIC: &[u8; 4] = b"tgv1";
const KEY_ID_LEN: usize = 8;
const NONCE_LEN: usize = 24;
const HEADER_LEN: usize = MAGIC.len() + KEY_ID_LEN + NONCE_LEN;

/// The environment variable that may hold the master key.
pub const MASTER_KEY_ENV: &str = "TGWATCH_MASTER_KEY";

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error(
        "the master key must be 32 bytes written as base64 (44 characters) or hex (64 characters); {origin} holds something else"
    )]
    BadKey { origin: String },
    #[error("cannot read the master key file {path}: {source}")]
    ReadKeyFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the master key file {path}: {source}")]
    WriteKeyFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the master key file {path} can be read by other users (mode {mode:o}); run `chmod 600 {path}`"
    )]
    KeyFileTooOpen { path: PathBuf, mode: u32 },
    #[error(
        "a stored secret was sealed with a key this service does not have (key id {key_id}); start it with the master key it was written with"
    )]
    UnknownKey { key_id: String },
    #[error(
        "a stored secret does not open with the master key: it was altered, or moved from another row"
    )]
    Tampered,
    #[error("a secret too large to seal (over 256 GiB)")]
    TooLarge,
    #[error("a stored secret is not in the sealed format")]
    NotSealed,
}

/// A 256-bit master key and its id.
#[derive(Clone)]
pub struct MasterKey {
    bytes: [u8; 32],
    id: [u8; KEY_ID_LEN],
}

impl std::fmt::Debug for MasterKey {
    /// The id only: the key itself never reaches a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKey({})", self.id_hex())
    }
}

impl MasterKey {
    pub fn generate() -> MasterKey {
        MasterKey::from_bytes(rand::random())
    }

    pub fn from_bytes(bytes: [u8; 32]) -> MasterKey {
        let digest = Sha256::new()
            .chain_update(b"tgwatch master key id\0")
            .chain_update(bytes)
            .finalize();
        let mut id = [0; KEY_ID_LEN];
        id.copy_from_slice(&digest[..KEY_ID_LEN]);
        MasterKey { bytes, id }
    }

    /// Reads a key written as base64 or hex; `origin` names where it came from for the error.
    pub fn parse(text: &str, origin: &str) -> Result<MasterKey, VaultError> {
        let text = text.trim();
        let bad = || VaultError::BadKey {
            origin: origin.to_owned(),
        };
        let decoded = if text.len() == 64 && text.chars().all(|c| c.is_ascii_hexdigit()) {
            (0..32)
                .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16))
                .collect::<Result<Vec<u8>, _>>()
                .map_err(|_| bad())?
        } else {
            STANDARD.decode(text).map_err(|_| bad())?
        };
        let bytes: [u8; 32] = decoded.try_into().map_err(|_| bad())?;
        Ok(MasterKey::from_bytes(bytes))
    }

    /// The key as written to a key file.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.bytes)
    }

    pub fn id_hex(&self) -> String {
        self.id.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Loads the key from `path`, or creates the file with a new key (mode 0600) when it does
    /// not exist. A file others can read is refused, as ssh refuses such a private key.
    pub fn load_or_create(path: &Path) -> Result<MasterKey, VaultError> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                refuse_open_permissions(path)?;
                MasterKey::parse(&text, &path.display().to_string())
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let key = MasterKey::generate();
                key.write_new_file(path)?;
                tracing::info!(path = %path.display(), key_id = %key.id_hex(), "created a new master key file");
                Ok(key)
            }
            Err(source) => Err(VaultError::ReadKeyFile {
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// Loads the key from `path` if the file exists.
    pub fn load_if_present(path: &Path) -> Result<Option<MasterKey>, VaultError> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                refuse_open_permissions(path)?;
                MasterKey::parse(&text, &path.display().to_string()).map(Some)
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(VaultError::ReadKeyFile {
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// Writes the key to a file that must not exist yet, readable by its owner only.
    pub fn write_new_file(&self, path: &Path) -> Result<(), VaultError> {
        let failed = |source| VaultError::WriteKeyFile {
            path: path.to_owned(),
            source,
        };
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path).map_err(failed)?;
        writeln!(file, "{}", self.to_base64()).map_err(failed)?;
        file.sync_all().map_err(failed)
    }
}

#[cfg(unix)]
fn refuse_open_permissions(path: &Path) -> Result<(), VaultError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|source| VaultError::ReadKeyFile {
            path: path.to_owned(),
            source,
        })?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(VaultError::KeyFileTooOpen {
            path: path.to_owned(),
            mode: mode & 0o777,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn refuse_open_permissions(_path: &Path) -> Result<(), VaultError> {
    Ok(())
}

/// Seals with the current key and opens with any key it holds.
#[derive(Clone, Debug)]
pub struct Vault {
    current: MasterKey,
    /// Keys that may still have sealed some rows (an interrupted rotation).
    others: Vec<MasterKey>,
}

impl Vault {
    pub fn new(current: MasterKey) -> Vault {
        Vault {
            current,
            others: Vec::new(),
        }
    }

    /// Also opens values sealed with `other`.
    pub fn also_opening(mut self, other: MasterKey) -> Vault {
        if other.id != self.current.id {
            self.others.push(other);
        }
        self
    }

    pub fn current_key(&self) -> &MasterKey {
        &self.current
    }

    /// The key file next to `path` that a rotation writes before it re-encrypts.
    pub fn pending_key_path(path: &Path) -> PathBuf {
        let mut name = path.as_os_str().to_owned();
        name.push(".new");
        PathBuf::from(name)
    }

    /// The vault for a service: the key from [`MASTER_KEY_ENV`] if set, else from `key_file`
    /// (created on first run). A `<key_file>.new` left by an interrupted rotation is loaded too.
    pub fn load(env_key: Option<&str>, key_file: &Path) -> Result<Vault, VaultError> {
        let current = match env_key {
            Some(text) => MasterKey::parse(text, MASTER_KEY_ENV)?,
            None => MasterKey::load_or_create(key_file)?,
        };
        let mut vault = Vault::new(current);
        if env_key.is_none()
            && let Some(pending) = MasterKey::load_if_present(&Vault::pending_key_path(key_file))?
        {
            tracing::warn!(
                path = %key_file.display(),
                "a key rotation did not finish; run `tgwatch rotate-key` again to complete it"
            );
            vault = vault.also_opening(pending);
        }
        Ok(vault)
    }

    /// Seals `plaintext` for the place named by `context` (e.g. `account_sessions.session:<id>`).
    pub fn seal(&self, plaintext: &[u8], context: &str) -> Result<Vec<u8>, VaultError> {
        let nonce: [u8; NONCE_LEN] = rand::random();
        let cipher = XChaCha20Poly1305::new((&self.current.bytes).into());
        let ciphertext = cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| VaultError::TooLarge)?;
        let mut sealed = Vec::with_capacity(HEADER_LEN + ciphertext.len());
        sealed.extend_from_slice(MAGIC);
        sealed.extend_from_slice(&self.current.id);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        Ok(sealed)
    }

    pub fn open(&self, sealed: &[u8], context: &str) -> Result<Vec<u8>, VaultError> {
        if sealed.len() < HEADER_LEN || &sealed[..MAGIC.len()] != MAGIC {
            return Err(VaultError::NotSealed);
        }
        let key_id = &sealed[MAGIC.len()..MAGIC.len() + KEY_ID_LEN];
        let key = std::iter::once(&self.current)
            .chain(&self.others)
            .find(|key| key.id == key_id)
            .ok_or_else(|| VaultError::UnknownKey {
                key_id: key_id.iter().map(|b| format!("{b:02x}")).collect(),
            })?;
        let mut nonce = [0_u8; NONCE_LEN];
        nonce.copy_from_slice(&sealed[MAGIC.len() + KEY_ID_LEN..HEADER_LEN]);
        XChaCha20Poly1305::new((&key.bytes).into())
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: &sealed[HEADER_LEN..],
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| VaultError::Tampered)
    }

    /// Whether `sealed` was sealed with the current key (a rotation skips those).
    pub fn is_current(&self, sealed: &[u8]) -> bool {
        sealed.len() >= HEADER_LEN
            && sealed[MAGIC.len()..MAGIC.len() + KEY_ID_LEN] == self.current.id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_key_and_context() {
        let vault = Vault::new(MasterKey::generate());
        let sealed = vault
            .seal(b"auth key bytes", "account_sessions.session:a")
            .unwrap();
        assert_eq!(
            vault.open(&sealed, "account_sessions.session:a").unwrap(),
            b"auth key bytes"
        );
        assert!(matches!(
            vault.open(&sealed, "account_sessions.session:b"),
            Err(VaultError::Tampered)
        ));
        let other = Vault::new(MasterKey::generate());
        assert!(matches!(
            other.open(&sealed, "account_sessions.session:a"),
            Err(VaultError::UnknownKey { .. })
        ));
        let mut flipped = sealed.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(matches!(
            vault.open(&flipped, "account_sessions.session:a"),
            Err(VaultError::Tampered)
        ));
        assert!(matches!(
            vault.open(b"plain", "x"),
            Err(VaultError::NotSealed)
        ));
    }

    #[test]
    fn the_plaintext_does_not_appear_in_the_sealed_value() {
        let vault = Vault::new(MasterKey::generate());
        let secret = [0xAB_u8; 64];
        let sealed = vault.seal(&secret, "c").unwrap();
        assert!(!sealed.windows(8).any(|w| w == &secret[..8]));
        // A fresh nonce each time: sealing twice gives different bytes.
        assert_ne!(sealed, vault.seal(&secret, "c").unwrap());
    }

    #[test]
    fn a_vault_mid_rotation_opens_values_of_both_keys_and_seals_with_the_new_one() {
        let old = MasterKey::generate();
        let new = MasterKey::generate();
        let sealed_old = Vault::new(old.clone()).seal(b"x", "c").unwrap();
        let vault = Vault::new(new).also_opening(old);
        assert_eq!(vault.open(&sealed_old, "c").unwrap(), b"x");
        assert!(!vault.is_current(&sealed_old));
        assert!(vault.is_current(&vault.seal(b"y", "c").unwrap()));
    }

    #[test]
    fn keys_parse_from_base64_and_hex_and_refuse_other_lengths() {
        let key = MasterKey::generate();
        let hex: String = key.bytes.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(MasterKey::parse(&key.to_base64(), "t").unwrap().id, key.id);
        assert_eq!(MasterKey::parse(&hex, "t").unwrap().id, key.id);
        let error = MasterKey::parse("c2hvcnQ=", "TGWATCH_MASTER_KEY").unwrap_err();
        assert!(error.to_string().contains("TGWATCH_MASTER_KEY"));
        assert!(MasterKey::parse("not base64!", "t").is_err());
    }

    #[test]
    fn the_key_file_is_created_owner_only_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tgwatch.key");
        let created = MasterKey::load_or_create(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert!(matches!(
                MasterKey::load_or_create(&path),
                Err(VaultError::KeyFileTooOpen { .. })
            ));
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        assert_eq!(MasterKey::load_or_create(&path).unwrap().id, created.id);
    }
}
