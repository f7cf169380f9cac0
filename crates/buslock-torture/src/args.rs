//! A tiny `--key value` / `--flag` parser: the harness takes a handful of
//! numbers and paths, and its workers are started by the harness itself.

use std::collections::HashMap;
use std::path::PathBuf;
use std::str::FromStr;

/// Parsed `--key value` pairs; a `--flag` followed by another `--key` (or
/// nothing) has the value `"true"`.
#[derive(Debug, Default)]
pub struct Args {
    values: HashMap<String, String>,
}

impl Args {
    /// Parse everything after the subcommand.
    pub fn parse(argv: impl Iterator<Item = String>) -> Result<Args, String> {
        let mut values = HashMap::new();
        let mut argv = argv.peekable();
        while let Some(arg) = argv.next() {
            let Some(key) = arg.strip_prefix("--") else {
                return Err(format!("unexpected argument {arg:?}"));
            };
            let value = match argv.peek() {
                Some(v) if !v.starts_with("--") => argv.next().unwrap_or_default(),
                _ => "true".to_owned(),
            };
            values.insert(key.to_owned(), value);
        }
        Ok(Args { values })
    }

    /// The raw value of `--key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// `--key` parsed as a number (or anything `FromStr`), `default` when absent.
    pub fn num<T: FromStr>(&self, key: &str, default: T) -> Result<T, String> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| format!("--{key} {v:?} is not a valid number")),
        }
    }

    /// `--key` as a path; an error naming the option when absent.
    pub fn path(&self, key: &str) -> Result<PathBuf, String> {
        self.get(key)
            .map(PathBuf::from)
            .ok_or_else(|| format!("--{key} is required"))
    }

    /// `--key` as a string; an error naming the option when absent.
    pub fn string(&self, key: &str) -> Result<String, String> {
        self.get(key)
            .map(str::to_owned)
            .ok_or_else(|| format!("--{key} is required"))
    }

    /// Whether `--key` was given.
    pub fn flag(&self, key: &str) -> bool {
        self.values.contains_key(key)
    }
}
