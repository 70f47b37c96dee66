//! File formats.

/// Extended XYZ (ASE-compatible) reading and writing.
pub mod xyz;

/// metatensor's `.mts` TensorMap files (npz archives).
pub mod mts;

/// NumPy `.npy` arrays.
pub mod npy;

/// Files whose zero pages are left as holes.
pub mod sparse_file;

/// The client side of the i-PI socket protocol (MD driving).
pub mod ipi;

// Quoting of input in error messages lives with the errors (the tensor
// module uses it too, and tensor must not reach back into io).
pub(crate) use crate::error::clip;

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
