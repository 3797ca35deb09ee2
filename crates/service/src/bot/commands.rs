//! The bot's commands: one enum whose descriptions are the `/help` text and Telegram's command
//! menu, the role each needs, and the parsing of their arguments. Pure: tested directly.

use teloxide::utils::command::{BotCommands, ParseError};

use tgwatch_core::presence::stats::MAX_WINDOW_HOURS;
use tgwatch_core::roles::Role;
use tgwatch_telegram::Username;

#[derive(BotCommands, Clone, Debug, PartialEq, Eq)]
#[command(rename_rule = "lowercase")]
pub enum Command {
    #[command(description = "register this chat for notifications and show its id")]
    Start,
    #[command(description = "list the commands")]
    Help,
    #[command(description = "who is online now: /status [@user]")]
    Status(String),
    #[command(description = "online time, sessions and a chart: /stats <hours> [@user]")]
    Stats(String),
    #[command(description = "start tracking someone: /track @user")]
    Track(String),
    #[command(description = "stop tracking someone: /untrack @user")]
    Untrack(String),
    #[command(description = "tracked users and this chat's notifications")]
    List,
    #[command(description = "online notifications in this chat: /notify on|off [@user]")]
    Notify(String),
    #[command(description = "monitored channels")]
    Channels,
    #[command(description = "a daily summary in this chat: /digest on|off")]
    Digest(String),
    #[command(description = "the fleet's accounts and their health (admins)")]
    Accounts,
}

impl Command {
    /// The command's name as typed, without the slash.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Start => "start",
            Command::Help => "help",
            Command::Status(_) => "status",
            Command::Stats(_) => "stats",
            Command::Track(_) => "track",
            Command::Untrack(_) => "untrack",
            Command::List => "list",
            Command::Notify(_) => "notify",
            Command::Channels => "channels",
            Command::Digest(_) => "digest",
            Command::Accounts => "accounts",
        }
    }

    /// The least role that may use the command.
    pub fn required_role(&self) -> Role {
        required_role(self.name())
    }
}

/// The least role for a command by name (unknown names need admin: fail closed).
pub fn required_role(name: &str) -> Role {
    match name {
        "start" | "help" | "status" | "stats" | "track" | "untrack" | "list" | "notify"
        | "channels" | "digest" => Role::User,
        _ => Role::Admin,
    }
}

/// How a command is typed, for replies to bad arguments.
pub fn usage(name: &str) -> &'static str {
    match name {
        "status" => "/status or /status @user",
        "stats" => "/stats 24, /stats 72 @user, /stats 7d @user (1 hour to 365 days)",
        "track" => "/track @user",
        "untrack" => "/untrack @user",
        "notify" => "/notify on, /notify off, /notify on @user, /notify off @user",
        "digest" => "/digest on or /digest off",
        "start" => "/start",
        "help" => "/help",
        "list" => "/list",
        "channels" => "/channels",
        "accounts" => "/accounts",
        _ => "/help lists the commands",
    }
}

/// The commands a role may use, as (name, description), in menu order.
pub fn commands_for(role: Role) -> Vec<(String, String)> {
    Command::bot_commands()
        .into_iter()
        .map(|c| {
            let name = c.command.trim_start_matches('/').to_owned();
            (name, c.description)
        })
        .filter(|(name, _)| role.allows(required_role(name)))
        .collect()
}

/// What the text of a message asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    Command(Command),
    /// `/something` the bot does not know.
    Unknown(String),
    /// Not a command, or a command for another bot (`/start@other_bot` in a group).
    NotForUs,
}

pub fn parse(text: &str, bot_username: &str) -> Parsed {
    if !text.starts_with('/') {
        return Parsed::NotForUs;
    }
    // Telegram clients put a newline after a command as often as a space; the derived parser
    // splits on spaces only.
    let normalized: String = text
        .trim()
        .chars()
        .map(|c| if c.is_whitespace() { ' ' } else { c })
        .collect();
    match Command::parse(&normalized, bot_username) {
        Ok(command) => Parsed::Command(command),
        Err(ParseError::UnknownCommand(name)) => {
            Parsed::Unknown(name.trim_start_matches('/').to_owned())
        }
        Err(ParseError::WrongBotName(_)) => Parsed::NotForUs,
        // Every argument is taken as a plain string and checked below, so no other error is
        // expected; treat one as an unknown command rather than failing.
        Err(_) => Parsed::Unknown(
            normalized
                .split(' ')
                .next()
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_owned(),
        ),
    }
}

/// Why arguments were refused, said so the person can fix them.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{problem}\nUsage: {usage}")]
pub struct ArgError {
    pub problem: String,
    pub usage: &'static str,
}

fn arg_error(command: &str, problem: impl Into<String>) -> ArgError {
    ArgError {
        problem: problem.into(),
        usage: usage(command),
    }
}

fn words(args: &str) -> Vec<&str> {
    args.split_whitespace().collect()
}

fn user(command: &str, word: &str) -> Result<Username, ArgError> {
    Username::parse(word).map_err(|error| arg_error(command, error.to_string()))
}

/// `/status [@user]`.
pub fn status_args(args: &str) -> Result<Option<Username>, ArgError> {
    match words(args).as_slice() {
        [] => Ok(None),
        [name] => user("status", name).map(Some),
        _ => Err(arg_error("status", "Give at most one user.")),
    }
}

/// `/track @user`, `/untrack @user`.
pub fn user_arg(command: &'static str, args: &str) -> Result<Username, ArgError> {
    match words(args).as_slice() {
        [name] => user(command, name),
        [] => Err(arg_error(command, "Whom? Give a username.")),
        _ => Err(arg_error(command, "Give exactly one username.")),
    }
}

/// A window length: `24`, `24h` or `7d`, from 1 hour to a year.
pub fn hours(word: &str) -> Result<i64, String> {
    let lower = word.to_ascii_lowercase();
    let (digits, factor) = match lower.strip_suffix('d') {
        Some(days) => (days, 24),
        None => (lower.strip_suffix('h').unwrap_or(&lower), 1),
    };
    let out_of_range = || {
        format!(
            "`{word}` is not a number of hours from 1 to {MAX_WINDOW_HOURS} (a year), like 24, 72h or 7d."
        )
    };
    let value: i64 = digits.parse().map_err(|_| out_of_range())?;
    let hours = value.checked_mul(factor).ok_or_else(out_of_range)?;
    if (1..=MAX_WINDOW_HOURS).contains(&hours) {
        Ok(hours)
    } else {
        Err(out_of_range())
    }
}

/// `/stats <hours> [@user]` (the two may come in either order).
pub fn stats_args(args: &str) -> Result<(i64, Option<Username>), ArgError> {
    let words = words(args);
    let looks_like_user = |w: &&str| w.starts_with('@') || w.contains("t.me/");
    let (hour_words, user_words): (Vec<&str>, Vec<&str>) =
        words.iter().partition(|w| !looks_like_user(w));
    let (hour_word, user_word) = match (hour_words.as_slice(), user_words.as_slice()) {
        ([], _) => return Err(arg_error("stats", "For how many hours?")),
        ([h], []) => (*h, None),
        ([h], [u]) => (*h, Some(*u)),
        // `/stats 24 alice_w`: a second plain word is the user.
        ([h, u], []) => (*h, Some(*u)),
        _ => return Err(arg_error("stats", "Give the hours and at most one user.")),
    };
    let hours = hours(hour_word).map_err(|problem| arg_error("stats", problem))?;
    let user = user_word.map(|w| user("stats", w)).transpose()?;
    Ok((hours, user))
}

/// `on` / `off` (also yes/no, true/false, 1/0, enable/disable).
fn switch(command: &str, word: &str) -> Result<bool, ArgError> {
    match word.to_ascii_lowercase().as_str() {
        "on" | "yes" | "true" | "1" | "enable" => Ok(true),
        "off" | "no" | "false" | "0" | "disable" => Ok(false),
        _ => Err(arg_error(
            command,
            format!("`{word}` is neither on nor off."),
        )),
    }
}

/// `/notify on|off [@user]`.
pub fn notify_args(args: &str) -> Result<(bool, Option<Username>), ArgError> {
    match words(args).as_slice() {
        [] => Err(arg_error("notify", "On or off?")),
        [on] => Ok((switch("notify", on)?, None)),
        [on, name] => Ok((switch("notify", on)?, Some(user("notify", name)?))),
        _ => Err(arg_error("notify", "Too many words.")),
    }
}

/// `/digest on|off`.
pub fn digest_args(args: &str) -> Result<bool, ArgError> {
    match words(args).as_slice() {
        [] => Err(arg_error("digest", "On or off?")),
        [on] => switch("digest", on),
        _ => Err(arg_error("digest", "Only on or off.")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str) -> Username {
        Username::parse(text).expect("valid username")
    }

    #[test]
    fn commands_parse_with_and_without_the_bot_name() {
        assert_eq!(
            parse("/start", "tgwatch_bot"),
            Parsed::Command(Command::Start)
        );
        assert_eq!(
            parse("/stats@TGWatch_Bot 24 @alice_w", "tgwatch_bot"),
            Parsed::Command(Command::Stats("24 @alice_w".into()))
        );
        assert_eq!(
            parse("/status\n@alice_w", "tgwatch_bot"),
            Parsed::Command(Command::Status("@alice_w".into()))
        );
        assert_eq!(
            parse("/status", "tgwatch_bot"),
            Parsed::Command(Command::Status(String::new()))
        );
        assert_eq!(parse("/start@other_bot", "tgwatch_bot"), Parsed::NotForUs);
        assert_eq!(parse("hello", "tgwatch_bot"), Parsed::NotForUs);
        assert_eq!(
            parse("/frobnicate now", "tgwatch_bot"),
            Parsed::Unknown("frobnicate".into())
        );
    }

    #[test]
    fn every_command_has_a_role_a_usage_and_a_menu_entry() {
        let all = commands_for(Role::Admin);
        assert_eq!(all.len(), 11);
        for (command, description) in &all {
            assert!(!description.is_empty(), "{command}");
            assert_ne!(
                usage(command),
                usage("no_such_command"),
                "{command} has its own usage"
            );
        }
        let users: Vec<String> = commands_for(Role::User)
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert!(users.contains(&"track".to_owned()));
        assert!(!users.contains(&"accounts".to_owned()));
        assert!(commands_for(Role::Banned).is_empty());
        assert_eq!(required_role("no_such_command"), Role::Admin);
    }

    #[test]
    fn stats_arguments() {
        assert_eq!(stats_args("24"), Ok((24, None)));
        assert_eq!(stats_args("72h @alice_w"), Ok((72, Some(name("alice_w")))));
        assert_eq!(stats_args("@alice_w 48"), Ok((48, Some(name("alice_w")))));
        assert_eq!(stats_args("7d alice_w"), Ok((168, Some(name("alice_w")))));
        assert_eq!(stats_args("8760"), Ok((8760, None)));
        let error = stats_args("").expect_err("hours are required");
        assert!(error.to_string().contains("Usage: /stats 24"), "{error}");
        let error = stats_args("8761").expect_err("over a year");
        assert!(error.problem.contains("1 to 8760"), "{error}");
        assert!(stats_args("0").is_err());
        assert!(stats_args("-5").is_err());
        assert!(stats_args("soon").is_err());
        assert!(stats_args("99999999999999999999d").is_err());
        assert!(stats_args("24 @a").is_err(), "usernames have 5+ characters");
        assert!(stats_args("24 @alice_w @bob_b").is_err());
    }

    #[test]
    fn user_and_switch_arguments() {
        assert_eq!(status_args(""), Ok(None));
        assert_eq!(status_args(" @Alice_W "), Ok(Some(name("alice_w"))));
        assert!(status_args("@alice_w @bob_b").is_err());
        assert_eq!(
            user_arg("track", "https://t.me/alice_w"),
            Ok(name("alice_w"))
        );
        let error = user_arg("track", "").expect_err("a user is required");
        assert_eq!(error.usage, "/track @user");
        assert!(user_arg("untrack", "@a b").is_err());
        assert_eq!(notify_args("on"), Ok((true, None)));
        assert_eq!(
            notify_args("OFF @alice_w"),
            Ok((false, Some(name("alice_w"))))
        );
        assert!(notify_args("maybe").is_err());
        assert!(notify_args("").is_err());
        assert_eq!(digest_args("on"), Ok(true));
        assert_eq!(digest_args("off"), Ok(false));
        assert!(digest_args("on @alice_w").is_err());
    }

    #[test]
    fn hours_accept_suffixes() {
        assert_eq!(hours("24"), Ok(24));
        assert_eq!(hours("24H"), Ok(24));
        assert_eq!(hours("2d"), Ok(48));
        assert_eq!(hours("365d"), Ok(8760));
        assert!(hours("366d").is_err());
    }
}
