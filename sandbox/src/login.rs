//! Logins: what Telegram answers while a client logs in, by phone code, with a 2FA password
//! (SRP, really checked) and by QR code; and the control API that plays the user's part (reading
//! the code, scanning the QR code).
//!
//! A login happens on an auth key that belongs to nobody yet ([`Sandbox::fresh_session_data`]).
//! Real Telegram would have the client make that key with a DH key exchange, which needs
//! Telegram's RSA private key; the sandbox pre-shares it instead. Until a login succeeds, such a
//! key may only call `help.getConfig` and the login methods answered here; everything else is
//! `401 AUTH_KEY_UNREGISTERED`, which is how grammers' `is_authorized()` tells. A successful
//! login makes the key one of the account's keys (an account keeps its pre-shared key as well).
//!
//! The flows (<https://core.telegram.org/api/auth>, `/api/srp`, `/api/qr-login`):
//! * code: `auth.sendCode` "sends" a code ([`Sandbox::login_code`] reads it, like an SMS), then
//!   `auth.signIn` with it; a phone of Telegram's test-DC form `99966XYYYY` gets the code `XXXXX`
//!   (X repeated), as on Telegram's test servers, so a person can log in without reading it;
//! * 2FA: `auth.signIn`, or an accepted QR token, answers `401 SESSION_PASSWORD_NEEDED` and
//!   remembers that this key passed the first step for that account; `account.getPassword` hands
//!   out the SRP parameters and a fresh challenge; `auth.checkPassword` proves the password;
//! * QR: `auth.exportLoginToken` gives a token; a logged-in app of the account accepts it
//!   ([`Sandbox::accept_login_token`]), which pushes `updateLoginToken` to the waiting key;
//!   `auth.exportLoginToken` again (or `auth.importLoginToken`) then succeeds.
//!
//! Simplifications, on purpose: codes expire only when a test says so
//! ([`Sandbox::expire_login_codes`]), tokens after 30 s or when a test says so; one pending code
//! per phone; no sign-up, SMS fallback, email code or password recovery; one DC, so QR login never
//! answers `loginTokenMigrateTo`; `api_id` and `except_ids` are not checked, an empty `api_hash`
//! is refused.

use std::collections::HashMap;

use grammers_session::SessionData;
use grammers_tl_types::{self as tl, Identifiable, functions};
use num_bigint::BigUint;
use rand::Rng;
use sha2::{Digest, Sha256, Sha512};

use crate::crypto::{ServerKey, random_key};
use crate::dispatch::Answer;
use crate::error::SandboxError;
use crate::sandbox::Sandbox;
use crate::wire::parse_call;
use crate::world::{AccountId, Ban, Pushed, World, unix_now};

/// How many digits a login code has (what `auth.sentCodeTypeApp` announces).
const CODE_LENGTH: u32 = 5;

/// How long a QR login token lives, in seconds, as on Telegram.
const TOKEN_LIFETIME: i32 = 30;

/// PBKDF2 rounds of `passwordKdfAlgoSHA256SHA256PBKDF2HMACSHA512iter100000SHA256ModPow`.
const KDF_ROUNDS: u32 = 100_000;

/// The SRP generator. Telegram uses 3 with the prime below; grammers checks the pair.
const SRP_G: u8 = 3;

/// Telegram's public 2048-bit safe prime for SRP, the `p` every real account's `current_algo`
/// carries. grammers checks that it is a safe prime and fits `g` before it answers a challenge,
/// so a made-up prime would not do.
const SRP_P: [u8; 256] = hex_256(
    b"c71caeb9c6b1c9048e6c522f70f13f73980d40238e3e21c14934d037563d930f\
      48198a0aa7c14058229493d22530f4dbfa336f6e0ac925139543aed44cce7c37\
      20fd51f69458705ac68cd4fe6b6b13abdc9746512969328454f18faf8c595f64\
      2477fe96bb2a941d5bcd1d4ac8cc49880708fa9b378e3c4f3a9060bee67cf9a4\
      a4a695811051907e162753b56b0f6b410dba74d8a84b2a14b3144e0ef1284754\
      fd17ed950d5965b4b9dd46582db1178d169c6bc465b0d6ff9ca3928fef5b9ae4\
      e418fc15e83ebea0f87fa9ff5eed70050ded2849f47bf959d956850ce929851f\
      0d8115f635b105ee2e4e15d04b2454bf6f4fadf034b10403119cd8e3b92fcc5b",
);

/// Decodes 512 hex digits at compile time (a bad digit is a compile error, not a runtime one).
const fn hex_256(hex: &[u8]) -> [u8; 256] {
    const fn nibble(digit: u8) -> u8 {
        match digit {
            b'0'..=b'9' => digit - b'0',
            b'a'..=b'f' => digit - b'a' + 10,
            _ => panic!("not a lower-case hex digit"),
        }
    }
    assert!(hex.len() == 512, "expected 512 hex digits");
    let mut out = [0; 256];
    let mut i = 0;
    while i < 256 {
        out[i] = (nibble(hex[2 * i]) << 4) | nibble(hex[2 * i + 1]);
        i += 1;
    }
    out
}

/// The login state of the fake Telegram: phones, passwords, codes, tokens and half-done logins.
#[derive(Default)]
pub(crate) struct Logins {
    /// Normalised phone number (digits only) -> the account it logs in as.
    phones: HashMap<String, AccountId>,
    /// Accounts with 2FA enabled.
    passwords: HashMap<AccountId, Password>,
    /// Normalised phone number -> the code last sent to it.
    codes: HashMap<String, SentCode>,
    /// Keys that passed the first step (code or QR) for an account with a password: the next
    /// step is `auth.checkPassword`.
    awaiting_password: HashMap<[u8; 8], AccountId>,
    /// The latest SRP challenge (`account.getPassword`) handed to each key.
    challenges: HashMap<[u8; 8], Challenge>,
    /// QR login tokens, by their bytes.
    tokens: HashMap<Vec<u8>, QrToken>,
}

impl Logins {
    /// Forgets every half-done login of the key: it just logged in or out.
    fn forget_key(&mut self, key: [u8; 8]) {
        self.awaiting_password.remove(&key);
        self.challenges.remove(&key);
        self.tokens.retain(|_, token| token.key != key);
    }
}

/// A code "sent" by `auth.sendCode`. It stays readable after use, as an SMS would.
struct SentCode {
    code: String,
    phone_code_hash: String,
    /// Used, or expired by [`Sandbox::expire_login_codes`].
    expired: bool,
}

/// A QR login token, bound to the key that exported it.
struct QrToken {
    key: [u8; 8],
    /// Unix seconds.
    expires: i32,
    /// Set when a logged-in app of this account scanned it.
    accepted_by: Option<AccountId>,
}

impl QrToken {
    /// An accepted token no longer expires: the login it completes is already decided.
    fn is_expired(&self, now: i32) -> bool {
        self.accepted_by.is_none() && now >= self.expires
    }
}

/// One SRP exchange: the server's secret `b` and public `g_b` (`srp_B`) for one key.
struct Challenge {
    srp_id: i64,
    account: AccountId,
    b: BigUint,
    g_b: [u8; 256],
}

/// A 2FA password as the server keeps it: not the password, only the SRP verifier and its salts.
/// See <https://core.telegram.org/api/srp>.
pub(crate) struct Password {
    salt1: Vec<u8>,
    salt2: Vec<u8>,
    /// `v = g^x mod p` with `x = PH2(password, salt1, salt2)`.
    verifier: BigUint,
    hint: Option<String>,
}

impl Password {
    /// Derives the verifier: PBKDF2 with 100 000 rounds, slow (seconds in a debug build), so
    /// callers run it outside the world lock.
    pub(crate) fn new(password: &str, hint: Option<&str>) -> Self {
        // As on Telegram: salt1 is the server's 8 bytes plus the 32 that the client appended
        // when it set the password; salt2 is the server's 16.
        let salt1 = random_bytes(40);
        let salt2 = random_bytes(16);
        let x = BigUint::from_bytes_be(&password_hash(password.as_bytes(), &salt1, &salt2));
        Password {
            verifier: g().modpow(&x, &p()),
            salt1,
            salt2,
            hint: hint.map(str::to_owned),
        }
    }

    fn algo(&self) -> tl::enums::PasswordKdfAlgo {
        kdf_algo(self.salt1.clone(), self.salt2.clone())
    }

    /// A fresh server secret `b` and `g_b = (k*v + g^b) mod p`.
    fn challenge(&self) -> (BigUint, [u8; 256]) {
        let p = p();
        let b = BigUint::from_bytes_be(&random_bytes(256));
        let g_b = (multiplier() * &self.verifier + g().modpow(&b, &p)) % &p;
        (b, pad(&g_b))
    }

    /// Checks the client's proof `M1` for its public `A` against the challenge `(b, g_b)`, the
    /// way Telegram does: both sides arrive at the same `S` only if the client knew `x`.
    fn verify(&self, b: &BigUint, g_b: &[u8; 256], a: &[u8], m1: &[u8]) -> bool {
        let p = p();
        let big_a = BigUint::from_bytes_be(a);
        // SRP's safety rule: 1 < A < p - 1, or a client could force a known S.
        let one = BigUint::from(1u8);
        if a.len() > 256 || big_a <= one || big_a >= &p - one {
            return false;
        }
        let g_a = pad(&big_a);
        let u = BigUint::from_bytes_be(&sha256(&[&g_a, g_b]));
        // S = (A * v^u)^b, which equals the client's (g_b - k*v)^(a + u*x).
        let s = (&big_a * self.verifier.modpow(&u, &p) % &p).modpow(b, &p);
        let k_s = sha256(&[&pad(&s)]);
        let p_xor_g = xor(&sha256(&[&SRP_P]), &sha256(&[&g_padded()]));
        let expected = sha256(&[
            &p_xor_g,
            &sha256(&[&self.salt1]),
            &sha256(&[&self.salt2]),
            &g_a,
            g_b,
            &k_s,
        ]);
        constant_time_eq(&expected, m1)
    }
}

fn kdf_algo(salt1: Vec<u8>, salt2: Vec<u8>) -> tl::enums::PasswordKdfAlgo {
    tl::enums::PasswordKdfAlgo::Sha256Sha256Pbkdf2Hmacsha512iter100000Sha256ModPow(
        tl::types::PasswordKdfAlgoSha256Sha256Pbkdf2Hmacsha512iter100000Sha256ModPow {
            salt1,
            salt2,
            g: i32::from(SRP_G),
            p: SRP_P.to_vec(),
        },
    )
}

fn p() -> BigUint {
    BigUint::from_bytes_be(&SRP_P)
}

fn g() -> BigUint {
    BigUint::from(SRP_G)
}

/// `g` as SRP hashes it: big-endian, padded to 256 bytes.
fn g_padded() -> [u8; 256] {
    let mut out = [0; 256];
    out[255] = SRP_G;
    out
}

/// `k = H(p | g)`.
fn multiplier() -> BigUint {
    BigUint::from_bytes_be(&sha256(&[&SRP_P, &g_padded()]))
}

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// `SH(data, salt) = H(salt | data | salt)`.
fn sh(data: &[u8], salt: &[u8]) -> [u8; 32] {
    sha256(&[salt, data, salt])
}

/// `PH2(password, salt1, salt2) = SH(pbkdf2(sha512, PH1(password, salt1, salt2), salt1,
/// 100000), salt2)` with `PH1 = SH(SH(password, salt1), salt2)`.
fn password_hash(password: &[u8], salt1: &[u8], salt2: &[u8]) -> [u8; 32] {
    let ph1 = sh(&sh(password, salt1), salt2);
    let mut derived = [0; 64];
    pbkdf2::pbkdf2_hmac::<Sha512>(&ph1, salt1, KDF_ROUNDS, &mut derived);
    sh(&derived, salt2)
}

/// A number below `p`, big-endian, padded to 256 bytes, as SRP hashes and sends it.
fn pad(n: &BigUint) -> [u8; 256] {
    let bytes = n.to_bytes_be();
    // Numbers here are reduced mod p, so they fit; keeping the low bytes keeps this total.
    let bytes = &bytes[bytes.len().saturating_sub(256)..];
    let mut out = [0; 256];
    out[256 - bytes.len()..].copy_from_slice(bytes);
    out
}

fn xor(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    let mut out = [0; 32];
    for ((out, l), r) in out.iter_mut().zip(left).zip(right) {
        *out = l ^ r;
    }
    out
}

/// Compares without an early exit, as a password check should.
fn constant_time_eq(left: &[u8], right: &[u8]) -> bool {
    left.len() == right.len() && left.iter().zip(right).fold(0, |acc, (l, r)| acc | (l ^ r)) == 0
}

fn random_bytes(len: usize) -> Vec<u8> {
    let mut bytes = vec![0; len];
    rand::Fill::fill(&mut bytes[..], &mut rand::rng());
    bytes
}

/// The code of a phone that follows Telegram's test-DC convention, `99966XYYYY` (X a DC from 1
/// to 3, any YYYY): X repeated five times, so that such a phone can log in without reading an
/// SMS (<https://core.telegram.org/api/auth#test-accounts>). `None` for any other phone. Any
/// formatting: only the digits count.
pub fn test_dc_code(phone: &str) -> Option<String> {
    let dc = normalize_phone(phone)
        .strip_prefix("99966")
        .filter(|rest| rest.len() == 5)?
        .chars()
        .next()?;
    matches!(dc, '1'..='3').then(|| dc.to_string().repeat(CODE_LENGTH as usize))
}

/// Digits only, so that `+1 415 555-0132` and `14155550132` are the same phone.
fn normalize_phone(phone: &str) -> String {
    phone.chars().filter(char::is_ascii_digit).collect()
}

/// Answers the login methods for a request made with `key`; `None` for any other method.
/// Works for any key, logged in or not (the dispatcher lets unauthorized keys through to here).
pub(crate) fn answer(
    world: &mut World,
    key: [u8; 8],
    dc: i32,
    id: u32,
    query: &[u8],
) -> Option<Result<Answer, tl::deserialize::Error>> {
    let answer = match id {
        functions::auth::SendCode::CONSTRUCTOR_ID => send_code(world, dc, query),
        functions::auth::SignIn::CONSTRUCTOR_ID => sign_in(world, key, query),
        functions::account::GetPassword::CONSTRUCTOR_ID => Ok(get_password(world, key)),
        functions::auth::CheckPassword::CONSTRUCTOR_ID => check_password(world, key, query),
        functions::auth::ExportLoginToken::CONSTRUCTOR_ID => {
            export_login_token(world, key, dc, query)
        }
        functions::auth::ImportLoginToken::CONSTRUCTOR_ID => {
            import_login_token(world, key, dc, query)
        }
        functions::auth::LogOut::CONSTRUCTOR_ID => Ok(log_out(world, key)),
        _ => return None,
    };
    Some(answer)
}

fn send_code(world: &mut World, dc: i32, query: &[u8]) -> Result<Answer, tl::deserialize::Error> {
    let request = parse_call::<functions::auth::SendCode>(query)?;
    if request.api_hash.is_empty() {
        return Ok(Answer::error(400, "API_ID_INVALID"));
    }
    let phone = normalize_phone(&request.phone_number);
    let Some(&account) = world.logins.phones.get(&phone) else {
        return Ok(Answer::error(400, "PHONE_NUMBER_INVALID"));
    };
    // The login happens in the account's own DC: the client moves there and asks again.
    if let Some(home_dc) = other_home_dc(world, account, dc) {
        return Ok(Answer::error(303, format!("PHONE_MIGRATE_{home_dc}")));
    }
    // Other bans are about sessions, and a new login is how a user gets past them.
    if world
        .account(account)
        .is_ok_and(|record| record.ban == Some(Ban::UserDeactivatedBan))
    {
        return Ok(Answer::error(400, "PHONE_NUMBER_BANNED"));
    }

    let mut rng = rand::rng();
    let code = test_dc_code(&phone).unwrap_or_else(|| {
        format!(
            "{:0width$}",
            rng.random_range(0..10u32.pow(CODE_LENGTH)),
            width = CODE_LENGTH as usize
        )
    });
    let phone_code_hash = format!("{:016x}", rng.random::<u64>());
    world.logins.codes.insert(
        phone,
        SentCode {
            code,
            phone_code_hash: phone_code_hash.clone(),
            expired: false,
        },
    );
    Ok(Answer::ok(&tl::enums::auth::SentCode::Code(
        tl::types::auth::SentCode {
            r#type: tl::enums::auth::SentCodeType::App(tl::types::auth::SentCodeTypeApp {
                length: CODE_LENGTH as i32,
            }),
            phone_code_hash,
            next_type: None,
            timeout: None,
        },
    )))
}

fn sign_in(
    world: &mut World,
    key: [u8; 8],
    query: &[u8],
) -> Result<Answer, tl::deserialize::Error> {
    let request = parse_call::<functions::auth::SignIn>(query)?;
    let phone = normalize_phone(&request.phone_number);
    let Some(&account) = world.logins.phones.get(&phone) else {
        return Ok(Answer::error(400, "PHONE_NUMBER_INVALID"));
    };
    if request.phone_code_hash.is_empty() {
        return Ok(Answer::error(400, "PHONE_CODE_HASH_EMPTY"));
    }
    let Some(code) = request.phone_code.filter(|code| !code.is_empty()) else {
        return Ok(Answer::error(400, "PHONE_CODE_EMPTY"));
    };
    let Some(sent) = world
        .logins
        .codes
        .get_mut(&phone)
        .filter(|sent| sent.phone_code_hash == request.phone_code_hash)
    else {
        return Ok(Answer::error(400, "PHONE_CODE_INVALID"));
    };
    if sent.expired {
        return Ok(Answer::error(400, "PHONE_CODE_EXPIRED"));
    }
    if sent.code != code {
        // The code stays valid: a typo does not cost the user a new code.
        return Ok(Answer::error(400, "PHONE_CODE_INVALID"));
    }
    sent.expired = true;
    Ok(finish_first_step(world, key, account, |authorization| {
        Answer::ok(&authorization)
    }))
}

/// The code or the QR step is done: log the key in, or ask for the password first.
fn finish_first_step(
    world: &mut World,
    key: [u8; 8],
    account: AccountId,
    success: impl FnOnce(tl::enums::auth::Authorization) -> Answer,
) -> Answer {
    if world.logins.passwords.contains_key(&account) {
        world.logins.awaiting_password.insert(key, account);
        return Answer::error(401, "SESSION_PASSWORD_NEEDED");
    }
    match log_in(world, key, account) {
        Some(authorization) => success(authorization),
        None => Answer::error(400, "USER_ID_INVALID"),
    }
}

/// Makes `key` one of the account's keys and describes the account as `auth.authorization`.
/// `None` if the account has no user, which `add_account` rules out.
fn log_in(
    world: &mut World,
    key: [u8; 8],
    account: AccountId,
) -> Option<tl::enums::auth::Authorization> {
    let user = world
        .users
        .get(&account.user_id())
        .map(|user| world.user_for(user, account))?;
    world.set_key_account(key, Some(account));
    world.logins.forget_key(key);
    Some(tl::enums::auth::Authorization::Authorization(
        tl::types::auth::Authorization {
            // Shares flag bit 1 with `otherwise_relogin_days`: both unset.
            setup_password_required: false,
            otherwise_relogin_days: None,
            tmp_sessions: None,
            future_auth_token: None,
            user,
        },
    ))
}

/// The password parameters for the account this key is logging in as (or is logged in as), with
/// a fresh SRP challenge; `has_password: false` when there is no such account or no password.
fn get_password(world: &mut World, key: [u8; 8]) -> Answer {
    let account = world
        .logins
        .awaiting_password
        .get(&key)
        .copied()
        .or_else(|| world.account_of_key(key));
    let password = account.and_then(|account| {
        let password = world.logins.passwords.get(&account)?;
        let (b, g_b) = password.challenge();
        Some((account, password.algo(), password.hint.clone(), b, g_b))
    });

    // What the client would use to set a new password: fresh salts every time, as on Telegram.
    let new_algo = kdf_algo(random_bytes(8), random_bytes(16));
    let new_secure_algo = tl::enums::SecurePasswordKdfAlgo::Pbkdf2Hmacsha512iter100000(
        tl::types::SecurePasswordKdfAlgoPbkdf2Hmacsha512iter100000 {
            salt: random_bytes(8),
        },
    );
    // grammers uses this as its SRP secret `a`.
    let secure_random = random_bytes(256);

    let reply = match password {
        Some((account, algo, hint, b, g_b)) => {
            let srp_id = rand::rng().random::<i64>();
            world.logins.challenges.insert(
                key,
                Challenge {
                    srp_id,
                    account,
                    b,
                    g_b,
                },
            );
            tl::types::account::Password {
                has_recovery: false,
                has_secure_values: false,
                // has_password, current_algo, srp_B and srp_id share flag bit 2: all or none.
                has_password: true,
                current_algo: Some(algo),
                srp_b: Some(g_b.to_vec()),
                srp_id: Some(srp_id),
                hint,
                email_unconfirmed_pattern: None,
                new_algo,
                new_secure_algo,
                secure_random,
                pending_reset_date: None,
                login_email_pattern: None,
            }
        }
        None => tl::types::account::Password {
            has_recovery: false,
            has_secure_values: false,
            has_password: false,
            current_algo: None,
            srp_b: None,
            srp_id: None,
            hint: None,
            email_unconfirmed_pattern: None,
            new_algo,
            new_secure_algo,
            secure_random,
            pending_reset_date: None,
            login_email_pattern: None,
        },
    };
    Answer::ok(&tl::enums::account::Password::Password(reply))
}

fn check_password(
    world: &mut World,
    key: [u8; 8],
    query: &[u8],
) -> Result<Answer, tl::deserialize::Error> {
    let request = parse_call::<functions::auth::CheckPassword>(query)?;
    let Some(account) = world
        .logins
        .awaiting_password
        .get(&key)
        .copied()
        .or_else(|| world.account_of_key(key))
    else {
        // Neither past the first login step nor logged in: nothing to check a password for.
        return Ok(Answer::error(401, "AUTH_KEY_UNREGISTERED"));
    };
    let Some(password) = world.logins.passwords.get(&account) else {
        return Ok(Answer::error(400, "PASSWORD_MISSING"));
    };
    let tl::enums::InputCheckPasswordSrp::Srp(srp) = request.password else {
        return Ok(Answer::error(400, "PASSWORD_HASH_INVALID"));
    };
    let Some(challenge) = world
        .logins
        .challenges
        .get(&key)
        .filter(|challenge| challenge.srp_id == srp.srp_id && challenge.account == account)
    else {
        return Ok(Answer::error(400, "SRP_ID_INVALID"));
    };
    // The verification (two 2048-bit modpows) runs under the world lock: a few milliseconds,
    // once per attempt, and it keeps the check consistent with a concurrent set_password.
    if !password.verify(&challenge.b, &challenge.g_b, &srp.a, &srp.m1) {
        // The challenge stays: grammers hands the same one back for a retry.
        return Ok(Answer::error(400, "PASSWORD_HASH_INVALID"));
    }
    Ok(match log_in(world, key, account) {
        Some(authorization) => Answer::ok(&authorization),
        None => Answer::error(400, "USER_ID_INVALID"),
    })
}

/// The account's DC when it is not `dc`.
fn other_home_dc(world: &World, account: AccountId, dc: i32) -> Option<i32> {
    world
        .account(account)
        .ok()
        .map(|record| record.home_dc)
        .filter(|home_dc| *home_dc != dc)
}

/// `auth.loginTokenMigrateTo`: the account that accepted the token lives in another DC, where
/// the client must import the token.
fn login_token_migrate(dc_id: i32, token: Vec<u8>) -> Answer {
    Answer::ok(&tl::enums::auth::LoginToken::MigrateTo(
        tl::types::auth::LoginTokenMigrateTo { dc_id, token },
    ))
}

fn login_token_answer(token: Vec<u8>, expires: i32) -> Answer {
    Answer::ok(&tl::enums::auth::LoginToken::Token(
        tl::types::auth::LoginToken { expires, token },
    ))
}

/// The QR step is done: `loginTokenSuccess`, or `SESSION_PASSWORD_NEEDED` first.
fn finish_qr(world: &mut World, key: [u8; 8], account: AccountId) -> Answer {
    finish_first_step(world, key, account, |authorization| {
        Answer::ok(&tl::enums::auth::LoginToken::Success(
            tl::types::auth::LoginTokenSuccess { authorization },
        ))
    })
}

fn export_login_token(
    world: &mut World,
    key: [u8; 8],
    dc: i32,
    query: &[u8],
) -> Result<Answer, tl::deserialize::Error> {
    let request = parse_call::<functions::auth::ExportLoginToken>(query)?;
    if request.api_hash.is_empty() {
        return Ok(Answer::error(400, "API_ID_INVALID"));
    }
    let now = unix_now();
    let current = world
        .logins
        .tokens
        .iter()
        .find(|(_, token)| token.key == key && !token.is_expired(now))
        .map(|(bytes, token)| (bytes.clone(), token.expires, token.accepted_by));
    match current {
        Some((bytes, _, Some(account))) => match other_home_dc(world, account, dc) {
            Some(home_dc) => Ok(login_token_migrate(home_dc, bytes)),
            None => {
                world.logins.tokens.remove(&bytes);
                Ok(finish_qr(world, key, account))
            }
        },
        Some((bytes, expires, None)) => Ok(login_token_answer(bytes, expires)),
        None => {
            world.logins.tokens.retain(|_, token| token.key != key);
            let bytes = random_bytes(32);
            let expires = now.saturating_add(TOKEN_LIFETIME);
            world.logins.tokens.insert(
                bytes.clone(),
                QrToken {
                    key,
                    expires,
                    accepted_by: None,
                },
            );
            Ok(login_token_answer(bytes, expires))
        }
    }
}

/// Finishes a QR login with a token, on whichever key calls it (on Telegram, the key of the DC
/// that `loginTokenMigrateTo` named).
fn import_login_token(
    world: &mut World,
    key: [u8; 8],
    dc: i32,
    query: &[u8],
) -> Result<Answer, tl::deserialize::Error> {
    let request = parse_call::<functions::auth::ImportLoginToken>(query)?;
    let Some(token) = world.logins.tokens.get(&request.token) else {
        return Ok(Answer::error(400, "AUTH_TOKEN_INVALID"));
    };
    if token.is_expired(unix_now()) {
        return Ok(Answer::error(400, "AUTH_TOKEN_EXPIRED"));
    }
    Ok(match token.accepted_by {
        Some(account) => match other_home_dc(world, account, dc) {
            Some(home_dc) => login_token_migrate(home_dc, request.token),
            None => {
                world.logins.tokens.remove(&request.token);
                finish_qr(world, key, account)
            }
        },
        // Not scanned yet: the token stands, as exportLoginToken would say.
        None => login_token_answer(request.token, token.expires),
    })
}

fn log_out(world: &mut World, key: [u8; 8]) -> Answer {
    if world.account_of_key(key).is_none() {
        return Answer::error(401, "AUTH_KEY_UNREGISTERED");
    }
    world.set_key_account(key, None);
    world.logins.forget_key(key);
    Answer::ok(&tl::enums::auth::LoggedOut::Out(
        tl::types::auth::LoggedOut {
            future_auth_token: None,
        },
    ))
}

impl Logins {
    /// The phone that logs in as `account` (digits only, as stored), if it has one.
    pub(crate) fn phone_of(&self, account: AccountId) -> Option<String> {
        self.phones
            .iter()
            .find(|(_, owner)| **owner == account)
            .map(|(phone, _)| phone.clone())
    }
}

/// The login control API: setting up what a login needs, and playing the user's part.
impl Sandbox {
    /// Sets the phone number that logs in as `account` (replacing its earlier one). Only the
    /// digits count, so `+1 415 555-0132` and `14155550132` are the same phone; clients may send
    /// either.
    ///
    /// Fails with [`SandboxError::InvalidPhone`] if `phone` has no digits,
    /// [`SandboxError::PhoneTaken`] if another account has it, [`SandboxError::UnknownAccount`].
    pub fn set_phone(&self, account: AccountId, phone: &str) -> Result<(), SandboxError> {
        let normalized = normalize_phone(phone);
        if normalized.is_empty() {
            return Err(SandboxError::InvalidPhone(phone.to_owned()));
        }
        let mut world = self.shared.world();
        world.account(account)?;
        if let Some(&owner) = world.logins.phones.get(&normalized)
            && owner != account
        {
            return Err(SandboxError::PhoneTaken {
                phone: normalized,
                account: owner,
            });
        }
        world.logins.phones.retain(|_, owner| *owner != account);
        world.logins.phones.insert(normalized, account);
        Ok(())
    }

    /// Enables 2FA for `account` with this password and hint (`Some`), or disables it (`None`;
    /// the hint is then ignored). Logins of the account then need `auth.checkPassword` after the
    /// code or QR step, as on Telegram.
    ///
    /// Only the SRP verifier is kept, derived here with Telegram's
    /// `passwordKdfAlgoSHA256SHA256PBKDF2HMACSHA512iter100000SHA256ModPow` (g = 3, Telegram's
    /// 2048-bit prime, random salts). The 100 000 PBKDF2 rounds make this call slow, most of all
    /// in debug builds (about a second); it runs without holding the sandbox's lock.
    ///
    /// Fails with [`SandboxError::UnknownAccount`] only.
    pub fn set_password(
        &self,
        account: AccountId,
        password: Option<&str>,
        hint: Option<&str>,
    ) -> Result<(), SandboxError> {
        // Fail fast, before the slow derivation.
        self.shared.world().account(account)?;
        let record = password.map(|password| Password::new(password, hint));
        let mut world = self.shared.world();
        world.account(account)?;
        match record {
            Some(record) => world.logins.passwords.insert(account, record),
            None => world.logins.passwords.remove(&account),
        };
        // Challenges handed out for the old password can no longer be answered.
        world
            .logins
            .challenges
            .retain(|_, challenge| challenge.account != account);
        Ok(())
    }

    /// Session data for a client that is about to log in: a NEW random auth key, registered as
    /// logged in to nobody, and every DC 1..=5 at [`Self::addr`] with that key, home DC
    /// [`crate::HOME_DC`], no self user.
    ///
    /// This stands in for the DH key exchange a real client would do before its first login
    /// (the sandbox cannot: that needs Telegram's RSA private key). With this key only
    /// `help.getConfig` and the login methods work; everything else answers
    /// `401 AUTH_KEY_UNREGISTERED` (so grammers' `is_authorized()` says `false`) until a login
    /// makes the key one of an account's keys.
    pub fn fresh_session_data(&self) -> SessionData {
        let data = random_key();
        self.shared.world().add_key(ServerKey::new(data), None);
        crate::session::session_data(&self.dcs, crate::HOME_DC, data, None)
    }

    /// The code last "sent" to this phone by `auth.sendCode` (any formatting; only the digits
    /// count), as a test would read it from an SMS; `None` if none was ever sent. Codes are 5
    /// random digits (`XXXXX` for a test-DC phone `99966XYYYY`). It stays readable after it was used or expired.
    pub fn login_code(&self, phone: &str) -> Option<String> {
        self.shared
            .world()
            .logins
            .codes
            .get(&normalize_phone(phone))
            .map(|sent| sent.code.clone())
    }

    /// Every code sent so far expires now: `auth.signIn` with it answers
    /// `400 PHONE_CODE_EXPIRED` (so tests need no sleeps). A new `auth.sendCode` sends a new one.
    pub fn expire_login_codes(&self) {
        for sent in self.shared.world().logins.codes.values_mut() {
            sent.expired = true;
        }
    }

    /// Plays "the user scanned the QR code with a logged-in app of `account`"
    /// (`auth.acceptLoginToken` on Telegram). The token is the one `auth.exportLoginToken`
    /// returned. Pushes `updateLoginToken` to the waiting key's live connection, if any, as
    /// Telegram does; the client then calls `auth.exportLoginToken` again to finish (and gets
    /// `SESSION_PASSWORD_NEEDED` first if the account has a password).
    ///
    /// Fails with [`SandboxError::UnknownLoginToken`] (never exported, replaced by a newer
    /// export, or its login already finished), [`SandboxError::LoginTokenExpired`],
    /// [`SandboxError::LoginTokenAlreadyAccepted`], or [`SandboxError::UnknownAccount`].
    pub fn accept_login_token(&self, token: &[u8], account: AccountId) -> Result<(), SandboxError> {
        let mut world = self.shared.world();
        world.account(account)?;
        let now = unix_now();
        let token = world
            .logins
            .tokens
            .get_mut(token)
            .ok_or(SandboxError::UnknownLoginToken)?;
        if token.accepted_by.is_some() {
            return Err(SandboxError::LoginTokenAlreadyAccepted);
        }
        if token.is_expired(now) {
            return Err(SandboxError::LoginTokenExpired);
        }
        token.accepted_by = Some(account);
        let key = token.key;
        // Nobody to tell if the waiting client went away: it asks `auth.exportLoginToken` again.
        let _ = world.push_to_key(key, Pushed::Short(Box::new(tl::enums::Update::LoginToken)));
        Ok(())
    }

    /// Every QR login token not yet accepted expires now: [`Self::accept_login_token`] refuses
    /// it and `auth.importLoginToken` answers `400 AUTH_TOKEN_EXPIRED`, while
    /// `auth.exportLoginToken` hands out a new one.
    pub fn expire_login_tokens(&self) {
        for token in self.shared.world().logins.tokens.values_mut() {
            if token.accepted_by.is_none() {
                token.expires = i32::MIN;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use grammers_crypto::two_factor_auth::{calculate_2fa, check_p_and_g};
    use grammers_tl_types::Serializable;

    use super::*;

    /// What grammers' `check_password` sends for `password`, given our challenge.
    fn client_proof(record: &Password, g_b: &[u8; 256], password: &str) -> ([u8; 32], [u8; 256]) {
        calculate_2fa(
            &record.salt1,
            &record.salt2,
            &SRP_P,
            &i32::from(SRP_G),
            g_b.to_vec(),
            random_bytes(256),
            password,
        )
    }

    #[test]
    fn test_dc_phones_get_their_dc_digit_five_times_as_code() {
        assert_eq!(test_dc_code("+999 66 2 1234").as_deref(), Some("22222"));
        assert_eq!(test_dc_code("9996610000").as_deref(), Some("11111"));
        assert_eq!(test_dc_code("9996631111").as_deref(), Some("33333"));
        // DC 4 and 5 have no test accounts; other lengths and prefixes are ordinary phones.
        assert_eq!(test_dc_code("9996641234"), None);
        assert_eq!(test_dc_code("999662123"), None);
        assert_eq!(test_dc_code("99966212345"), None);
        assert_eq!(test_dc_code("14155550132"), None);
    }

    #[test]
    fn the_prime_is_telegrams_and_passes_grammers_checks() {
        assert!(check_p_and_g(&SRP_P, &i32::from(SRP_G)));
        assert_eq!(&SRP_P[..4], &[0xc7, 0x1c, 0xae, 0xb9]);
        assert_eq!(&SRP_P[252..], &[0xb9, 0x2f, 0xcc, 0x5b]);
    }

    /// One derivation serves all cases: PBKDF2 with 100 000 rounds is slow in debug builds.
    #[test]
    fn srp_accepts_the_right_password_only() {
        let record = Password::new("correct horse", Some("horse"));
        let (b, g_b) = record.challenge();

        let (m1, g_a) = client_proof(&record, &g_b, "correct horse");
        assert!(record.verify(&b, &g_b, &g_a, &m1));

        let (m1, g_a) = client_proof(&record, &g_b, "battery staple");
        assert!(!record.verify(&b, &g_b, &g_a, &m1));

        // A proof for another challenge does not carry over.
        let (other_b, other_g_b) = record.challenge();
        let (m1, g_a) = client_proof(&record, &other_g_b, "correct horse");
        assert!(!record.verify(&b, &g_b, &g_a, &m1));
        assert!(record.verify(&other_b, &other_g_b, &g_a, &m1));

        // A degenerate A (0, 1, p - 1, p) would let a client force S; it is refused outright.
        let p = p();
        for bad in [
            BigUint::ZERO,
            BigUint::from(1u8),
            &p - BigUint::from(1u8),
            p.clone(),
        ] {
            assert!(!record.verify(&b, &g_b, &pad(&bad), &m1));
        }
    }

    fn error_of(answer: Answer) -> (i32, String) {
        match answer {
            Answer::Error { code, message } => (code, message),
            Answer::Result(_) => panic!("expected an error"),
        }
    }

    #[test]
    fn a_key_logged_in_to_nobody_may_only_log_in() {
        let mut world = World::default();
        let key = ServerKey::new(random_key());
        let key_id = key.id();
        world.add_key(key, None);

        let call = |world: &mut World, body: Vec<u8>| {
            crate::dispatch::call(world, crate::dispatch::Caller::key(key_id), &body)
        };
        assert!(matches!(
            call(&mut world, functions::help::GetConfig {}.to_bytes()),
            Answer::Result(_)
        ));
        assert!(matches!(
            call(&mut world, functions::account::GetPassword {}.to_bytes()),
            Answer::Result(_)
        ));
        for refused in [
            functions::updates::GetState {}.to_bytes(),
            functions::users::GetUsers {
                id: vec![tl::enums::InputUser::UserSelf],
            }
            .to_bytes(),
            functions::auth::LogOut {}.to_bytes(),
        ] {
            assert_eq!(
                error_of(call(&mut world, refused)),
                (401, "AUTH_KEY_UNREGISTERED".to_owned())
            );
        }
        // Login methods the sandbox does not answer are not "not logged in".
        assert_eq!(
            error_of(call(
                &mut world,
                functions::auth::ResendCode {
                    phone_number: "1".into(),
                    phone_code_hash: "h".into(),
                    reason: None,
                }
                .to_bytes()
            )),
            (400, "METHOD_NOT_IMPLEMENTED".to_owned())
        );
        // Counted in the totals, though no account made them.
        assert_eq!(world.calls.get("updates.getState"), Some(&1));
    }

    #[test]
    fn a_method_flood_wait_hits_every_key_and_then_clears() {
        let mut world = World::default();
        let account = world
            .add_account(1, 1, None, "Me", ServerKey::new(random_key()))
            .expect("account");
        let logged_in = world.account(account).expect("account").original_key;
        let fresh = ServerKey::new(random_key());
        let fresh_id = fresh.id();
        world.add_key(fresh, None);
        world.method_floods.insert(
            "updates.getState".to_owned(),
            crate::world::FloodWait {
                seconds: 7,
                remaining: 2,
            },
        );
        let get_state = functions::updates::GetState {}.to_bytes();
        for key in [logged_in, fresh_id] {
            assert_eq!(
                error_of(crate::dispatch::call(
                    &mut world,
                    crate::dispatch::Caller::key(key),
                    &get_state
                )),
                (420, "FLOOD_WAIT_7".to_owned())
            );
        }
        assert!(matches!(
            crate::dispatch::call(
                &mut world,
                crate::dispatch::Caller::key(logged_in),
                &get_state,
            ),
            Answer::Result(_)
        ));
        assert!(world.method_floods.is_empty());
    }

    #[test]
    fn phones_are_compared_by_their_digits() {
        assert_eq!(normalize_phone("+1 (415) 555-0132"), "14155550132");
        assert_eq!(normalize_phone("no digits"), "");
    }
}
