//! Triangular solves for the fitted models' variances and leave-out
//! errors, on the factors as the model keeps them (row-major) without a
//! transposed copy per call, and a blocked form for many right-hand sides.
//!
//! Why not nalgebra's `tr_solve_upper_triangular` on a matrix: it solves
//! one right-hand side after the other, streaming the whole factor from
//! memory each time (58 MB for the 2688 parameters of a two-species linear
//! model, 96 times for one 32-atom frame's force rows). The blocked solve
//! reads the factor once per block row and does the bulk of the work as a
//! matrix product (nalgebra's `gemm`, which calls matrixmultiply), so that
//! the same flops run from cache.
use nalgebra::DMatrix;

use super::linalg::dot;

/// Solves Rᵀx = b in place for an upper-triangular n × n `r` stored
/// row-major (only its upper triangle read): column-oriented forward
/// substitution, which walks each row of R once, contiguously. False when a
/// diagonal entry is zero (x is then unspecified).
pub fn solve_upper_transposed_row_major(r: &[f64], n: usize, x: &mut [f64]) -> bool {
    debug_assert!(r.len() >= n * n && x.len() == n);
    for j in 0..n {
        let d = r[j * n + j];
        if d == 0.0 {
            return false;
        }
        let xj = x[j] / d;
        x[j] = xj;
        for (xi, rji) in x[j + 1..].iter_mut().zip(&r[j * n + j + 1..(j + 1) * n]) {
            *xi -= rji * xj;
        }
    }
    true
}

/// Solves Lx = b in place for a lower-triangular n × n `l` stored row-major
/// (only its lower triangle read): row-oriented forward substitution, one
/// contiguous dot product per row. False when a diagonal entry is zero.
pub fn solve_lower_row_major(l: &[f64], n: usize, x: &mut [f64]) -> bool {
    debug_assert!(l.len() >= n * n && x.len() == n);
    for i in 0..n {
        let d = l[i * n + i];
        if d == 0.0 {
            return false;
        }
        let s = dot(&l[i * n..i * n + i], &x[..i]);
        x[i] = (x[i] - s) / d;
    }
    true
}

/// Rows of a block of the blocked solve: 128 rows of an n = 2688 factor
/// are 2.8 MB of the off-diagonal panel and 128 KB of the diagonal block,
/// which matrixmultiply packs into its own cache-sized tiles.
const BLOCK: usize = 128;

/// Solves LX = B in place for a lower-triangular n × n `l` (column-major,
/// as nalgebra stores it; only its lower triangle read) and B with any
/// number of columns: blocked forward substitution, X_i = L_ii⁻¹(B_i −
/// L_i,<i X_<i), the product by `gemm`. False when a diagonal entry is zero.
/// (A row-major upper-triangular R read as column-major is L = Rᵀ.)
pub fn solve_lower_blocked(l: &DMatrix<f64>, b: &mut DMatrix<f64>) -> bool {
    let n = l.nrows();
    debug_assert!(l.ncols() == n && b.nrows() == n);
    let mut start = 0;
    while start < n {
        let size = BLOCK.min(n - start);
        if start > 0 {
            let (done, mut rest) = b.rows_range_pair_mut(0..start, start..start + size);
            rest.gemm(-1.0, &l.view((start, 0), (size, start)), &done, 1.0);
        }
        let diagonal = l.view((start, start), (size, size));
        let mut block = b.rows_mut(start, size);
        if !diagonal.solve_lower_triangular_mut(&mut block) {
            return false;
        }
        start += size;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math::random::LegacyRandomState;

    /// A well-conditioned upper-triangular R (diagonal 1–2, off-diagonal
    /// ±0.3/√n) and right-hand sides, n not a multiple of the block.
    fn factor(n: usize, rng: &mut LegacyRandomState) -> DMatrix<f64> {
        DMatrix::from_fn(n, n, |i, j| if i == j { 1.0 + rng.random_sample() } else if i < j { 0.3 * rng.gauss() / (n as f64).sqrt() } else { 0.0 })
    }

    /// Each solve against nalgebra's (≤ 1e-12 relative, the rounding of
    /// n = 300 substitutions on a factor of condition number ~10) and
    /// against its own residual.
    #[test]
    fn solves_agree_with_nalgebra() {
        let mut rng = LegacyRandomState::new(3);
        let n = 300;
        let r = factor(n, &mut rng);
        // row-major storage of R: column-major storage of Rᵀ
        let row_major: Vec<f64> = r.transpose().as_slice().to_vec();
        let b = DMatrix::from_fn(n, 7, |_, _| rng.gauss());
        let want = r.tr_solve_upper_triangular(&b).unwrap();
        let scale = want.amax();
        for c in 0..7 {
            let mut x: Vec<f64> = b.column(c).iter().copied().collect();
            assert!(solve_upper_transposed_row_major(&row_major, n, &mut x));
            for i in 0..n {
                assert!((x[i] - want[(i, c)]).abs() <= 1e-12 * scale, "column {c} row {i}");
            }
        }
        let l = DMatrix::from_column_slice(n, n, &row_major);
        let mut x = b.clone();
        assert!(solve_lower_blocked(&l, &mut x));
        assert!((&x - &want).amax() <= 1e-12 * scale);
        assert!((r.transpose() * &x - &b).amax() <= 1e-12 * b.amax());
        // the lower solve on a row-major L (Rᵀ again, as the Cholesky factor of K_MM is kept)
        let lower_row_major: Vec<f64> = r.as_slice().to_vec();
        let mut x: Vec<f64> = b.column(0).iter().copied().collect();
        assert!(solve_lower_row_major(&lower_row_major, n, &mut x));
        for i in 0..n {
            assert!((x[i] - want[(i, 0)]).abs() <= 1e-12 * scale);
        }
        // a zero on the diagonal is refused
        let mut singular = row_major.clone();
        singular[5 * n + 5] = 0.0;
        assert!(!solve_upper_transposed_row_major(&singular, n, &mut vec![1.0; n]));
        assert!(!solve_lower_row_major(&DMatrix::from_column_slice(n, n, &singular).transpose().as_slice().to_vec(), n, &mut vec![1.0; n]));
        assert!(!solve_lower_blocked(&DMatrix::from_column_slice(n, n, &singular), &mut b.clone()));
    }
}
