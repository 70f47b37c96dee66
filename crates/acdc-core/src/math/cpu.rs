//! CPU features of the machine we run on, detected once: the hot loops have
//! AVX2 (and FMA) variants chosen at run time, so one binary runs everywhere.

/// Whether the CPU has AVX2.
#[cfg(target_arch = "x86_64")]
pub fn has_avx2() -> bool {
    use std::sync::OnceLock;
    static FLAG: OnceLock<bool> = OnceLock::new();
    *FLAG.get_or_init(|| is_x86_feature_detected!("avx2"))
}

/// Whether the CPU has AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
pub fn has_avx2_fma() -> bool {
    use std::sync::OnceLock;
    static FLAG: OnceLock<bool> = OnceLock::new();
    *FLAG.get_or_init(|| has_avx2() && is_x86_feature_detected!("fma"))
}
