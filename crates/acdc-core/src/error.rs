//! One error type for the core; every message names the offending field and value.
use std::fmt;

/// An error from the core. The message is meant for the end user and names
/// the field and value that caused it.
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// A structure (types, positions, cell, pbc) is not valid.
    InvalidSystem(String),
    /// A hyper-parameter or option is not valid.
    InvalidParameter(String),
    /// A file or text could not be parsed; `line` is 1-based.
    Parse { line: usize, message: String },
    /// Reading or writing a file failed.
    Io(String),
    /// A numerical failure (singular matrix, non-convergence).
    Numerical(String),
    /// The work would need more memory than the budget allows (the
    /// `budget` module sizes it; not linked, as budget builds on this module).
    Memory(String),
    /// The computation was cancelled by its caller.
    Cancelled,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidSystem(m) => write!(f, "invalid system: {m}"),
            Error::InvalidParameter(m) => write!(f, "invalid parameter: {m}"),
            Error::Parse { line, message } => write!(f, "parse error at line {line}: {message}"),
            Error::Io(m) => write!(f, "I/O error: {m}"),
            Error::Numerical(m) => write!(f, "numerical error: {m}"),
            Error::Memory(m) => write!(f, "too large: {m}"),
            Error::Cancelled => write!(f, "cancelled"),
        }
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e.to_string())
    }
}

/// Result alias for the core.
pub type Result<T> = std::result::Result<T, Error>;

/// Longest piece of input quoted in an error message, in characters.
const QUOTE_LIMIT: usize = 100;

/// `text` shortened to about [`QUOTE_LIMIT`] characters for an error message
/// (a hostile or corrupt file may hold a single line of megabytes), with the
/// full length stated when it was cut.
pub(crate) fn clip(text: &str) -> String {
    match text.char_indices().nth(QUOTE_LIMIT) {
        None => text.to_string(),
        Some((end, _)) => format!("{}… ({} bytes in all)", &text[..end], text.len()),
    }
}
