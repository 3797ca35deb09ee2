//! Loading a configuration file so that every error names its line.
//!
//! figment names the key of a bad value but not its line, and [`Config::validate`] names keys
//! only. So a file that figment refuses is parsed again with `toml` (whose errors carry the
//! position), and the key of a validation error is looked up in the file's syntax tree
//! (`toml_edit` keeps the position of every item).

use std::path::Path;

use figment::{
    error::Kind,
    providers::{Format, Toml},
};
use serde::Serialize;

use crate::config::{Config, ConfigError};

/// Why a configuration file was refused, with where in the file when known.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConfigProblem {
    pub message: String,
    /// The dotted key (`tracked_users[1].account`), when known.
    pub key: Option<String>,
    /// 1-based line and column in the file, when known.
    pub line: Option<usize>,
    pub column: Option<usize>,
}

impl std::fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.line, self.column) {
            (Some(line), Some(column)) => write!(f, "line {line}, column {column}: ")?,
            (Some(line), None) => write!(f, "line {line}: ")?,
            _ => {}
        }
        if let Some(key) = &self.key
            && !self.message.contains(key.as_str())
        {
            write!(f, "`{key}`: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigProblem {}

/// Loads `text` as the configuration file in `folder` the way `run` does (defaults, then the
/// text, then the environment, relative paths resolved against `folder`, then every check of
/// [`Config::service_problems`]) and lists every problem, each located in `text`.
///
/// serde stops at the first key it cannot take, so a key that fails is taken out of the file
/// and the rest is read again: every unknown key and wrong type is listed, not just the first.
pub fn check_text(text: &str, folder: &Path) -> Result<Config, Vec<ConfigProblem>> {
    let table: toml::Table = match toml::from_str(text) {
        Ok(table) => table,
        Err(error) => {
            let position = error.span().map(|span| position_of(text, span.start));
            return Err(vec![ConfigProblem {
                message: error.message().trim().to_owned(),
                key: None,
                line: position.map(|(line, _)| line),
                column: position.map(|(_, column)| column),
            }]);
        }
    };
    let mut file = toml::Value::Table(table);
    let mut problems = Vec::new();
    let loaded = loop {
        let error = match toml::to_string(&file) {
            Ok(remaining) => match Config::extract(Toml::string(&remaining)) {
                Ok(config) => break Some(config),
                Err(error) => error,
            },
            Err(error) => {
                problems.push(ConfigProblem {
                    message: error.to_string(),
                    key: None,
                    line: None,
                    column: None,
                });
                break None;
            }
        };
        let mut key_path = error.path.clone();
        let mut bad_item = error.path.clone();
        match &error.kind {
            Kind::UnknownField(field, _) if key_path.last() != Some(field) => {
                key_path.push(field.clone());
                bad_item.push(field.clone());
            }
            // The entry lacks the field: the entry goes.
            Kind::MissingField(field) => key_path.push(field.to_string()),
            _ => {}
        }
        let key = dotted(&key_path);
        // What the file does not hold (the environment's values) cannot be taken out.
        let in_file = problems.len() < MAX_PROBLEMS && remove(&mut file, &bad_item);
        problems.push(locate(
            text,
            key,
            if in_file {
                error.kind.to_string()
            } else {
                error.to_string()
            },
        ));
        if !in_file {
            break None;
        }
    };
    if let Some(mut config) = loaded {
        config.resolve_paths(folder);
        problems.extend(
            config
                .service_problems()
                .into_iter()
                .map(|problem| located(text, problem)),
        );
        if problems.is_empty() {
            return Ok(config);
        }
    }
    // In the order of the file; problems with no place in it (defaults, the environment) last.
    problems.sort_by_key(|problem| (problem.line.is_none(), problem.line, problem.column));
    Err(problems)
}

/// [`Config::warnings`], located in `text`.
pub fn warnings(text: &str, config: &Config) -> Vec<ConfigProblem> {
    config
        .warnings()
        .into_iter()
        .map(|warning| located(text, warning))
        .collect()
}

/// Enough for any real file; a bound so that a pathological one cannot loop for long.
const MAX_PROBLEMS: usize = 100;

fn located(text: &str, problem: ConfigError) -> ConfigProblem {
    match problem {
        ConfigError::Invalid { key, message } => locate(text, key, message),
        ConfigError::Load(error) => ConfigProblem {
            message: error.to_string(),
            key: None,
            line: None,
            column: None,
        },
    }
}

fn locate(text: &str, key: String, message: String) -> ConfigProblem {
    let position = key_position(text, &key);
    ConfigProblem {
        message,
        line: position.map(|(line, _)| line),
        column: position.map(|(_, column)| column),
        key: (!key.is_empty()).then_some(key),
    }
}

/// figment's path (`["tracked_users", "1", "account"]`) as a dotted key
/// (`tracked_users[1].account`).
fn dotted(path: &[String]) -> String {
    let mut key = String::new();
    for part in path {
        if part.parse::<usize>().is_ok() {
            key.push_str(&format!("[{part}]"));
        } else {
            if !key.is_empty() {
                key.push('.');
            }
            key.push_str(part);
        }
    }
    key
}

/// Takes the item at `path` out of `value`; false when it is not there.
fn remove(value: &mut toml::Value, path: &[String]) -> bool {
    match (value, path) {
        (_, []) => false,
        (toml::Value::Table(table), [last]) => table.remove(last).is_some(),
        (toml::Value::Array(array), [last]) => match last.parse::<usize>() {
            Ok(index) if index < array.len() => {
                array.remove(index);
                true
            }
            _ => false,
        },
        (toml::Value::Table(table), [first, rest @ ..]) => {
            table.get_mut(first).is_some_and(|next| remove(next, rest))
        }
        (toml::Value::Array(array), [first, rest @ ..]) => first
            .parse::<usize>()
            .ok()
            .and_then(|index| array.get_mut(index))
            .is_some_and(|next| remove(next, rest)),
        _ => false,
    }
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
pub fn position_of(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |index| index + 1);
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (line, column)
}

/// Where the item named by a dotted key (`webhooks.endpoints[1].name`, `tracked_users[0]`) is
/// in `text`: the deepest part of the key found in the file.
pub fn key_position(text: &str, key: &str) -> Option<(usize, usize)> {
    let document = toml_edit::ImDocument::parse(text).ok()?;
    let mut item = document.as_item();
    let mut found = None;
    for part in key_parts(key) {
        let next = match part {
            KeyPart::Name(name) => item.get(name),
            KeyPart::Index(index) => item.get(index),
        };
        let Some(next) = next else { break };
        item = next;
        if let Some(span) = item.span() {
            found = Some(span.start);
        }
    }
    found.map(|offset| position_of(text, offset))
}

enum KeyPart<'a> {
    Name(&'a str),
    Index(usize),
}

/// `a.b[2].c` -> a, b, 2, c.
fn key_parts(key: &str) -> Vec<KeyPart<'_>> {
    let mut parts = Vec::new();
    for segment in key.split('.') {
        let (name, rest) = match segment.find('[') {
            Some(index) => segment.split_at(index),
            None => (segment, ""),
        };
        if !name.is_empty() {
            parts.push(KeyPart::Name(name));
        }
        for index in rest.split(['[', ']']).filter(|s| !s.is_empty()) {
            if let Ok(index) = index.parse() {
                parts.push(KeyPart::Index(index));
            }
        }
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first problem but the missing admin token (these texts have none).
    fn first_problem(text: &str, why: &str) -> ConfigProblem {
        check_text(text, Path::new(""))
            .expect_err(why)
            .into_iter()
            .find(|problem| problem.key.as_deref() != Some("http.admin_token"))
            .expect("a problem")
    }

    #[test]
    fn every_problem_is_listed_key_by_key() {
        let text = "[presence]\ngap_secs = 10\npoll_min_seconds = \"often\"\n\
                    [http]\nadmin_tokn = \"x\"\n\
                    [logs]\ncleanup_batch_size = 0\n\
                    [[accounts]]\nlabel = \"\"\n";
        let problems = check_text(text, Path::new("")).expect_err("six problems");
        let keys: Vec<_> = problems
            .iter()
            .map(|problem| (problem.key.as_deref().unwrap_or(""), problem.line))
            .collect();
        assert_eq!(
            keys,
            vec![
                ("presence.gap_secs", Some(2)),
                ("presence.poll_min_seconds", Some(3)),
                // Not in the file: its section.
                ("http.admin_token", Some(4)),
                ("http.admin_tokn", Some(5)),
                ("logs.cleanup_batch_size", Some(7)),
                ("accounts[0].label", Some(9)),
            ],
            "{problems:#?}"
        );
    }

    #[test]
    fn bad_toml_names_the_line() {
        let text = "[presence]\ngap_seconds = 180\n[[tracked_users]\nusername = \"x\"\n";
        let problem = first_problem(text, "unclosed header");
        assert_eq!(problem.line, Some(3), "{problem:?}");
        assert!(
            problem.to_string().starts_with("line 3, column"),
            "{problem}"
        );
    }

    #[test]
    fn wrong_type_names_the_line_and_the_key() {
        let text = "[presence]\npoll_min_seconds = 60\ngap_seconds = \"three minutes\"\n";
        let problem = first_problem(text, "wrong type");
        assert_eq!(problem.line, Some(3), "{problem:?}");
        assert_eq!(problem.key.as_deref(), Some("presence.gap_seconds"));
        assert!(problem.to_string().contains("line 3"), "{problem}");
    }

    #[test]
    fn unknown_key_names_the_line() {
        let text = "[http]\nbind = \"127.0.0.1:8080\"\n\n[presence]\ngap_secs = 10\n";
        let problem = first_problem(text, "unknown key");
        assert_eq!(problem.line, Some(5), "{problem:?}");
        assert!(problem.message.contains("gap_secs"), "{problem}");
    }

    #[test]
    fn unknown_account_label_names_the_line_of_the_entry() {
        let text = "[[accounts]]\nlabel = \"main\"\n\n[[tracked_users]]\nusername = \"alice_w\"\n\n\
                    [[tracked_users]]\nusername = \"bob_smith\"\naccount = \"ghost\"\n";
        let problem = first_problem(text, "unknown account");
        assert_eq!(problem.key.as_deref(), Some("tracked_users[1].account"));
        assert_eq!(problem.line, Some(9), "{problem:?}");
        assert!(problem.to_string().contains("ghost"), "{problem}");
    }

    #[test]
    fn keys_are_found_in_nested_arrays_of_tables() {
        let text = "[webhooks]\njitter = 0.1\n\n[[webhooks.endpoints]]\nname = \"a\"\n\n\
                    [[webhooks.endpoints]]\nname = \"b\"\nurl = \"x\"\n";
        assert_eq!(
            key_position(text, "webhooks.endpoints[1].url"),
            Some((9, 7))
        );
        assert_eq!(
            key_position(text, "webhooks.endpoints[1]").map(|p| p.0),
            Some(7)
        );
        assert_eq!(key_position(text, "webhooks.jitter"), Some((2, 10)));
        // A key the file does not hold (a default) has no position.
        assert_eq!(key_position(text, "presence.gap_seconds"), None);
    }

    #[test]
    fn positions_count_characters() {
        assert_eq!(position_of("ab\ncé\nx", 6), (2, 3));
        assert_eq!(position_of("", 0), (1, 1));
    }
}
