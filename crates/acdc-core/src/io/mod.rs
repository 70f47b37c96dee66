//! File formats.

/// Extended XYZ (ASE-compatible) reading and writing.
pub mod xyz;

/// metatensor's `.mts` TensorMap files (npz archives).
pub mod mts;

/// NumPy `.npy` arrays.
pub mod npy;

/// Files whose zero pages are left as holes.
pub mod sparse_file;

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

#[cfg(test)]
mod tests {
    #[test]
    fn clip_keeps_short_text_and_cuts_long_text() {
        assert_eq!(super::clip("abc"), "abc");
        let long = "é".repeat(1_000_000);
        let c = super::clip(&long);
        assert!(c.chars().count() < 140, "{c}");
        assert!(c.ends_with("(2000000 bytes in all)"), "{c}");
    }
}
