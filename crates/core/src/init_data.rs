//! Telegram Mini App sign-in: `initData` checked as Telegram documents it. Pure.
//!
//! - secret key = HMAC-SHA256(key = "WebAppData", message = bot token);
//! - data-check-string = every field but `hash`, sorted by key, `key=value` joined with `\n`
//!   (values URL-decoded; the `signature` field stays in);
//! - `hash` must be hex(HMAC-SHA256(key = secret key, message = data-check-string)), compared in
//!   constant time;
//! - `auth_date` no older than the configured age (and not from the future, beyond a small
//!   allowance for clocks);
//! - the `user` field (JSON) names the person; its `id` must be the one the client claims.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use crate::constant_time;

/// How far in the future an `auth_date` may lie (clocks differ a little).
const FUTURE_ALLOWANCE_SECONDS: i64 = 300;

/// The person inside `initData` (`user` field).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct WebAppUser {
    pub id: i64,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub language_code: Option<String>,
}

/// A checked `initData`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitData {
    pub user: WebAppUser,
    pub auth_date: DateTime<Utc>,
    pub query_id: Option<String>,
    pub start_param: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InitDataError {
    #[error("init_data is not a query string: {0}")]
    Malformed(String),
    #[error("init_data has no `{0}` field")]
    Missing(&'static str),
    #[error("init_data's hash does not match: it was not signed with this bot's token")]
    BadHash,
    #[error("init_data's auth_date is not a unix time")]
    BadAuthDate,
    #[error(
        "init_data is too old ({age_seconds} s; at most {max_age_seconds} s): open the Mini App again"
    )]
    Stale {
        age_seconds: i64,
        max_age_seconds: i64,
    },
    #[error("init_data's auth_date lies in the future")]
    FromTheFuture,
    #[error("init_data's user is not valid JSON with an id: {0}")]
    BadUser(String),
    #[error("init_data is for user {signed}, not user_id {claimed}")]
    UserMismatch { signed: i64, claimed: i64 },
}

/// Checks `init_data` (the raw query string Telegram gives the Mini App) with `bot_token`.
/// `claimed_user_id`, when given, must be the id of the signed `user`.
pub fn validate(
    init_data: &str,
    bot_token: &str,
    now: DateTime<Utc>,
    max_age_seconds: i64,
    claimed_user_id: Option<i64>,
) -> Result<InitData, InitDataError> {
    let fields = parse_fields(init_data)?;
    let hash = field(&fields, "hash").ok_or(InitDataError::Missing("hash"))?;
    let expected = sign(&data_check_string(&fields), bot_token);
    if !constant_time::eq(hash.to_ascii_lowercase().as_bytes(), expected.as_bytes()) {
        return Err(InitDataError::BadHash);
    }
    // Signed by the bot's token from here on: the fields are Telegram's.
    let auth_date = field(&fields, "auth_date").ok_or(InitDataError::Missing("auth_date"))?;
    let auth_date = auth_date
        .parse::<i64>()
        .ok()
        .and_then(|seconds| DateTime::from_timestamp(seconds, 0))
        .ok_or(InitDataError::BadAuthDate)?;
    let age_seconds = (now - auth_date).num_seconds();
    if age_seconds < -FUTURE_ALLOWANCE_SECONDS {
        return Err(InitDataError::FromTheFuture);
    }
    if age_seconds > max_age_seconds {
        return Err(InitDataError::Stale {
            age_seconds,
            max_age_seconds,
        });
    }
    let user = field(&fields, "user").ok_or(InitDataError::Missing("user"))?;
    let user: WebAppUser =
        serde_json::from_str(user).map_err(|error| InitDataError::BadUser(error.to_string()))?;
    if let Some(claimed) = claimed_user_id
        && claimed != user.id
    {
        return Err(InitDataError::UserMismatch {
            signed: user.id,
            claimed,
        });
    }
    Ok(InitData {
        user,
        auth_date,
        query_id: field(&fields, "query_id").map(str::to_owned),
        start_param: field(&fields, "start_param").map(str::to_owned),
    })
}

/// The decoded `key=value` pairs; a key given twice makes the data ambiguous and is refused.
fn parse_fields(init_data: &str) -> Result<Vec<(String, String)>, InitDataError> {
    if init_data.trim().is_empty() {
        return Err(InitDataError::Malformed("it is empty".to_owned()));
    }
    let mut fields: Vec<(String, String)> = form_urlencoded::parse(init_data.as_bytes())
        .map(|(key, value)| (key.into_owned(), value.into_owned()))
        .collect();
    fields.sort();
    if let Some(pair) = fields.windows(2).find(|pair| pair[0].0 == pair[1].0) {
        return Err(InitDataError::Malformed(format!(
            "`{}` is given twice",
            pair[0].0
        )));
    }
    Ok(fields)
}

fn field<'a>(fields: &'a [(String, String)], key: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(name, _)| name == key)
        .map(|(_, value)| value.as_str())
}

/// Every field but `hash`, sorted by key (`fields` is sorted), as `key=value` lines.
pub fn data_check_string(fields: &[(String, String)]) -> String {
    fields
        .iter()
        .filter(|(key, _)| key != "hash")
        .map(|(key, value)| format!("{key}={value}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// hex(HMAC-SHA256(HMAC-SHA256("WebAppData", bot_token), data_check_string)).
pub fn sign(data_check_string: &str, bot_token: &str) -> String {
    let secret = hmac(b"WebAppData", bot_token.as_bytes());
    hex(&hmac(&secret, data_check_string.as_bytes()))
}

fn hmac(key: &[u8], message: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length: new_from_slice cannot fail.
    match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(message);
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}

/// Builds a signed `initData` query string as Telegram would (tests, the benchmark).
pub fn sign_fields(fields: &[(&str, &str)], bot_token: &str) -> String {
    let mut sorted: Vec<(String, String)> = fields
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect();
    sorted.sort();
    let hash = sign(&data_check_string(&sorted), bot_token);
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (key, value) in fields {
        query.append_pair(key, value);
    }
    query.append_pair("hash", &hash);
    query.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "123456:test-token_ABC-def";

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_767_225_600, 0).unwrap_or_default()
    }

    fn signed(user: &str, auth_date: i64) -> String {
        sign_fields(
            &[
                ("query_id", "AAHdF6IQAAAAAN0XohDhrOrc"),
                ("user", user),
                ("auth_date", &auth_date.to_string()),
                ("signature", "abc_-def"),
            ],
            TOKEN,
        )
    }

    const ALICE: &str = r#"{"id":279058397,"first_name":"Vladislav","last_name":"Kibenko","username":"vdkfrost","language_code":"ru","is_premium":true,"allows_write_to_pm":true}"#;

    #[test]
    fn a_valid_init_data_names_its_user() {
        let data = signed(ALICE, now().timestamp() - 60);
        let checked = validate(&data, TOKEN, now(), 86_400, Some(279058397)).expect("valid");
        assert_eq!(checked.user.id, 279058397);
        assert_eq!(checked.user.username.as_deref(), Some("vdkfrost"));
        assert_eq!(
            checked.query_id.as_deref(),
            Some("AAHdF6IQAAAAAN0XohDhrOrc")
        );
        assert_eq!(checked.auth_date.timestamp(), now().timestamp() - 60);
        // No claimed id: any signed user.
        assert!(validate(&data, TOKEN, now(), 86_400, None).is_ok());
        // An uppercase hash is the same hash.
        let (rest, hash) = data.rsplit_once("hash=").expect("hash");
        let upper = format!("{rest}hash={}", hash.to_ascii_uppercase());
        assert!(validate(&upper, TOKEN, now(), 86_400, None).is_ok());
    }

    /// The data-check-string as Telegram's documentation shows it: sorted, `\n`-joined,
    /// decoded values, without the hash, with the signature.
    #[test]
    fn the_data_check_string_is_sorted_decoded_and_leaves_out_the_hash() {
        let fields = parse_fields("user=%7B%22id%22%3A1%7D&auth_date=5&hash=ff&signature=s%2Bt")
            .expect("parse");
        assert_eq!(
            data_check_string(&fields),
            "auth_date=5\nsignature=s+t\nuser={\"id\":1}"
        );
    }

    /// An independent computation of the same HMAC path (known answer): the hash of a fixed
    /// data-check-string under a fixed token.
    #[test]
    fn the_hmac_path_matches_a_known_answer() {
        // Computed with Python: hmac.new(hmac.new(b"WebAppData", token, sha256).digest(),
        // b"auth_date=1\nuser={\"id\":1}", sha256).hexdigest()
        assert_eq!(
            sign("auth_date=1\nuser={\"id\":1}", TOKEN),
            "741ec80df821fe81e95c326708f63b91b46ac000ea713f0045d330f95d1a84b9"
        );
    }

    #[test]
    fn a_forged_hash_is_refused() {
        let data = signed(ALICE, now().timestamp());
        // Someone changes the user and keeps the hash.
        let forged = data.replace("279058397", "279058398");
        assert_eq!(
            validate(&forged, TOKEN, now(), 86_400, Some(279058398)),
            Err(InitDataError::BadHash)
        );
        // Signed with another bot's token.
        let other = sign_fields(
            &[
                ("user", ALICE),
                ("auth_date", &now().timestamp().to_string()),
            ],
            "654321:other-token",
        );
        assert_eq!(
            validate(&other, TOKEN, now(), 86_400, None),
            Err(InitDataError::BadHash)
        );
        // A hash of the right length that is not the hash; an empty one.
        let (rest, _) = data.rsplit_once("hash=").expect("hash");
        let zeros = format!("{rest}hash={}", "0".repeat(64));
        assert_eq!(
            validate(&zeros, TOKEN, now(), 86_400, None),
            Err(InitDataError::BadHash)
        );
        let empty = format!("{rest}hash=");
        assert_eq!(
            validate(&empty, TOKEN, now(), 86_400, None),
            Err(InitDataError::BadHash)
        );
    }

    #[test]
    fn a_stale_or_future_auth_date_is_refused() {
        let old = signed(ALICE, now().timestamp() - 86_401);
        assert_eq!(
            validate(&old, TOKEN, now(), 86_400, None),
            Err(InitDataError::Stale {
                age_seconds: 86_401,
                max_age_seconds: 86_400
            })
        );
        // Exactly the maximum age is still fine.
        let edge = signed(ALICE, now().timestamp() - 86_400);
        assert!(validate(&edge, TOKEN, now(), 86_400, None).is_ok());
        let future = signed(ALICE, now().timestamp() + 3600);
        assert_eq!(
            validate(&future, TOKEN, now(), 86_400, None),
            Err(InitDataError::FromTheFuture)
        );
    }

    #[test]
    fn another_users_init_data_is_refused() {
        let data = signed(ALICE, now().timestamp());
        assert_eq!(
            validate(&data, TOKEN, now(), 86_400, Some(1)),
            Err(InitDataError::UserMismatch {
                signed: 279058397,
                claimed: 1
            })
        );
    }

    #[test]
    fn missing_or_broken_fields_are_refused() {
        let at = now().timestamp().to_string();
        assert_eq!(
            validate("", TOKEN, now(), 86_400, None),
            Err(InitDataError::Malformed("it is empty".to_owned()))
        );
        let no_hash = format!("user={ALICE}&auth_date={at}");
        assert_eq!(
            validate(&no_hash, TOKEN, now(), 86_400, None),
            Err(InitDataError::Missing("hash"))
        );
        let no_user = sign_fields(&[("auth_date", &at)], TOKEN);
        assert_eq!(
            validate(&no_user, TOKEN, now(), 86_400, None),
            Err(InitDataError::Missing("user"))
        );
        let no_date = sign_fields(&[("user", ALICE)], TOKEN);
        assert_eq!(
            validate(&no_date, TOKEN, now(), 86_400, None),
            Err(InitDataError::Missing("auth_date"))
        );
        let bad_date = sign_fields(&[("user", ALICE), ("auth_date", "yesterday")], TOKEN);
        assert_eq!(
            validate(&bad_date, TOKEN, now(), 86_400, None),
            Err(InitDataError::BadAuthDate)
        );
        let bad_user = sign_fields(&[("user", "{\"name\":\"x\"}"), ("auth_date", &at)], TOKEN);
        assert!(matches!(
            validate(&bad_user, TOKEN, now(), 86_400, None),
            Err(InitDataError::BadUser(_))
        ));
        let twice = format!(
            "{}&user=%7B%22id%22%3A2%7D",
            sign_fields(&[("user", ALICE), ("auth_date", &at)], TOKEN)
        );
        assert!(matches!(
            validate(&twice, TOKEN, now(), 86_400, None),
            Err(InitDataError::Malformed(_))
        ));
    }
}
