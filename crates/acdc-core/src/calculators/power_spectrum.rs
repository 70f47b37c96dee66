//! SOAP power spectrum p^{a1 a2}_{n1 n2 l}(i) = (−1)^l/√(2l+1) Σ_m
//! ⟨a1 n1 l m|ρ_i⟩⟨a2 n2 l m|ρ_i⟩ (×√2 when a1 ≠ a2), SPEC.md §3.
use rayon::prelude::*;

use super::environment::{key_selected, sample_labels, Environments};
use super::expansion::{CentreDensity, Expansion};
use super::hypers::SoapHypers;
use super::{Calculator, ComputeOptions};
use crate::error::Result;
use crate::system::System;
use crate::tensor::{Labels, TensorBlock, TensorMap};

const KEY_NAMES: [&str; 3] = ["center_type", "neighbor_1_type", "neighbor_2_type"];

/// SOAP power spectrum with featomic 0.6 hyper-parameters.
pub struct SoapPowerSpectrum {
    parameters: String,
    expansion: Expansion,
}

/// `out[(l, n1, n2)] += f_l Σ_m a[lm][n1] b[lm][n2]`, with `a[lm]` at
/// `a[lm * a_stride..]` and likewise for `b`: one small AᵀB product per l.
///
/// This is the hot loop of power-spectrum gradients. The radial size is
/// made a compile-time constant for common sizes (fully unrolled, vectorised
/// loops) and, on x86-64 machines that have them, AVX2 and FMA are used
/// (checked once at run time, so the binary still runs everywhere).
#[inline]
fn accumulate_products(out: &mut [f64], factors: &[f64], n_max: usize, a: &[f64], a_stride: usize, b: &[f64], b_stride: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        if has_avx2_fma() {
            // SAFETY: the CPU supports the features this function is compiled for
            unsafe { accumulate_products_avx2(out, factors, n_max, a, a_stride, b, b_stride) };
            return;
        }
    }
    accumulate_products_dispatch(out, factors, n_max, a, a_stride, b, b_stride);
}

#[cfg(target_arch = "x86_64")]
fn has_avx2_fma() -> bool {
    use std::sync::OnceLock;
    static FLAG: OnceLock<bool> = OnceLock::new();
    *FLAG.get_or_init(|| is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"))
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn accumulate_products_avx2(out: &mut [f64], factors: &[f64], n_max: usize, a: &[f64], a_stride: usize, b: &[f64], b_stride: usize) {
    accumulate_products_dispatch(out, factors, n_max, a, a_stride, b, b_stride);
}

#[inline(always)]
fn accumulate_products_dispatch(out: &mut [f64], factors: &[f64], n_max: usize, a: &[f64], a_stride: usize, b: &[f64], b_stride: usize) {
    macro_rules! fixed {
        ($($n:literal)*) => {
            match n_max {
                $($n => products_fixed::<$n>(out, factors, a, a_stride, b, b_stride),)*
                _ => products_any(out, factors, n_max, a, a_stride, b, b_stride),
            }
        };
    }
    fixed!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16)
}

#[inline(always)]
fn products_fixed<const N: usize>(out: &mut [f64], factors: &[f64], a: &[f64], a_stride: usize, b: &[f64], b_stride: usize) {
    for (l, (&f, o)) in factors.iter().zip(out.chunks_exact_mut(N * N)).enumerate() {
        for lm in l * l..(l + 1) * (l + 1) {
            let ar: &[f64; N] = a[lm * a_stride..lm * a_stride + N].try_into().expect("N values");
            let br: &[f64; N] = b[lm * b_stride..lm * b_stride + N].try_into().expect("N values");
            for n1 in 0..N {
                let x = f * ar[n1];
                let row: &mut [f64; N] = (&mut o[n1 * N..(n1 + 1) * N]).try_into().expect("N values");
                for n2 in 0..N {
                    row[n2] += x * br[n2];
                }
            }
        }
    }
}

#[inline(always)]
fn products_any(out: &mut [f64], factors: &[f64], n_max: usize, a: &[f64], a_stride: usize, b: &[f64], b_stride: usize) {
    let nn = n_max * n_max;
    for (l, (&f, o)) in factors.iter().zip(out.chunks_exact_mut(nn)).enumerate() {
        for lm in l * l..(l + 1) * (l + 1) {
            let ar = &a[lm * a_stride..lm * a_stride + n_max];
            let br = &b[lm * b_stride..lm * b_stride + n_max];
            for (row, &x) in o.chunks_exact_mut(n_max).zip(ar) {
                let x = f * x;
                for (r, &y) in row.iter_mut().zip(br) {
                    *r += x * y;
                }
            }
        }
    }
}

/// Makes each l block of `out` symmetric in (n1, n2): o ← o + oᵀ.
fn symmetrize(out: &mut [f64], l_max: usize, n_max: usize) {
    let nn = n_max * n_max;
    for l in 0..=l_max {
        let o = &mut out[l * nn..(l + 1) * nn];
        for n1 in 0..n_max {
            for n2 in n1..n_max {
                let s = o[n1 * n_max + n2] + o[n2 * n_max + n1];
                o[n1 * n_max + n2] = s;
                o[n2 * n_max + n1] = s;
            }
        }
    }
}

/// Derivative of f_l Σ_m c1 c2 when both coefficient sets change: `g1`, `g2`
/// are the derivatives of `c1`, `c2` (all with row stride `stride`).
#[allow(clippy::too_many_arguments)]
#[inline]
fn product_derivative(out: &mut [f64], factors: &[f64], n_max: usize, g1: &[f64], g2: &[f64], c1: &[f64], c2: &[f64], stride: usize, same: bool, l_max: usize) {
    accumulate_products(out, factors, n_max, g1, stride, c2, stride);
    if same {
        symmetrize(out, l_max, n_max);
    } else {
        accumulate_products(out, factors, n_max, c1, stride, g2, stride);
    }
}

impl SoapPowerSpectrum {
    /// Parses and validates the hyper-parameters, builds the basis.
    pub fn new(hypers: &str) -> Result<SoapPowerSpectrum> {
        let (_, settings) = SoapHypers::from_json("soap_power_spectrum", hypers)?;
        Ok(SoapPowerSpectrum { parameters: hypers.to_string(), expansion: Expansion::new(settings)? })
    }

    fn keys_from(env: &Environments, densities: &[CentreDensity]) -> Vec<[i32; 3]> {
        let ns = env.species.len();
        let mut seen = vec![false; ns * ns * ns];
        for d in densities {
            for s1 in 0..ns {
                for s2 in s1..ns {
                    if d.present[s1] && d.present[s2] {
                        seen[(d.centre_species * ns + s1) * ns + s2] = true;
                    }
                }
            }
        }
        let mut keys = Vec::new();
        for c in 0..ns {
            for s1 in 0..ns {
                for s2 in s1..ns {
                    if seen[(c * ns + s1) * ns + s2] {
                        keys.push([env.species[c], env.species[s1], env.species[s2]]);
                    }
                }
            }
        }
        keys
    }

    fn properties(&self) -> Labels {
        let n_max = self.expansion.n_max() as i32;
        let mut v = Vec::new();
        for l in 0..=self.expansion.settings.max_angular as i32 {
            for n1 in 0..n_max {
                for n2 in 0..n_max {
                    v.extend_from_slice(&[l, n1, n2]);
                }
            }
        }
        Labels::new(&["l", "n_1", "n_2"], v)
    }
}

impl Calculator for SoapPowerSpectrum {
    fn name(&self) -> &str {
        "soap_power_spectrum"
    }

    fn parameters(&self) -> &str {
        &self.parameters
    }

    fn keys(&self, systems: &[System]) -> Result<Labels> {
        let env = Environments::new(systems, self.expansion.settings.cutoff)?;
        let densities = env.expand(&self.expansion, &env.centres(&ComputeOptions::default())?, Default::default())?;
        Ok(Labels::new(&KEY_NAMES, Self::keys_from(&env, &densities).concat()))
    }

    fn compute(&self, systems: &[System], options: &ComputeOptions) -> Result<TensorMap> {
        let flags = options.gradient_flags()?;
        let env = Environments::new(systems, self.expansion.settings.cutoff)?;
        let centres = env.centres(options)?;
        let densities = env.expand(&self.expansion, &centres, flags)?;
        let n_max = self.expansion.n_max();
        let n_lm = self.expansion.n_lm();
        let l_max = self.expansion.settings.max_angular;
        let ns = env.species.len();
        let stride_lm = ns * n_max;
        let n_props = (l_max + 1) * n_max * n_max;
        let properties = self.properties();

        let mut key_values = Vec::new();
        let mut blocks = Vec::new();
        for key in Self::keys_from(&env, &densities) {
            if !key_selected(options, &KEY_NAMES, &key)? {
                continue;
            }
            let c = env.species.binary_search(&key[0]).unwrap_or(0);
            let s1 = env.species.binary_search(&key[1]).unwrap_or(0);
            let s2 = env.species.binary_search(&key[2]).unwrap_or(0);
            let cross = if s1 != s2 { std::f64::consts::SQRT_2 } else { 1.0 };
            let factors: Vec<f64> = (0..=l_max)
                .map(|l| cross * if l % 2 == 0 { 1.0 } else { -1.0 } / ((2 * l + 1) as f64).sqrt())
                .collect();
            let rows: Vec<&CentreDensity> =
                densities.iter().filter(|d| d.centre_species == c && d.present[s1] && d.present[s2]).collect();

            let mut values = vec![0.0; rows.len() * n_props];
            values.par_chunks_mut(n_props.max(1)).zip(rows.par_iter()).for_each(|(out, d)| {
                let cf = &d.coefficients;
                accumulate_products(out, &factors, n_max, &cf[s1 * n_max..], stride_lm, &cf[s2 * n_max..], stride_lm);
            });
            let mut block = TensorBlock::new(sample_labels(&rows), vec![], properties.clone(), values)?;

            if flags.positions {
                let gradient_atoms: Vec<Vec<(usize, Option<usize>)>> =
                    rows.iter().map(|d| d.gradient_rows(|sp| sp == s1 || sp == s2)).collect();
                let mut samples = Vec::new();
                for (row, (d, atoms)) in rows.iter().zip(&gradient_atoms).enumerate() {
                    for &(atom, _) in atoms {
                        samples.extend_from_slice(&[row as i32, d.system as i32, atom as i32]);
                    }
                }
                let total: usize = gradient_atoms.iter().map(Vec::len).sum();
                let mut grad = vec![0.0; total * 3 * n_props];
                // one disjoint output slice per sample, filled in parallel
                let mut chunks = Vec::with_capacity(rows.len());
                let mut rest = grad.as_mut_slice();
                for atoms in &gradient_atoms {
                    let (head, tail) = rest.split_at_mut(atoms.len() * 3 * n_props);
                    chunks.push(head);
                    rest = tail;
                }
                chunks.into_par_iter().zip(rows.par_iter()).zip(gradient_atoms.par_iter()).for_each(|((out, d), atoms)| {
                    let c1 = &d.coefficients[s1 * n_max..];
                    let c2 = &d.coefficients[s2 * n_max..];
                    for (row, &(_, source)) in atoms.iter().enumerate() {
                        for x in 0..3 {
                            let o = &mut out[(row * 3 + x) * n_props..][..n_props];
                            match source {
                                Some(k) => {
                                    let sp = d.neighbors[k].1;
                                    let g = &d.neighbor_gradients[(k * 3 + x) * n_lm * n_max..];
                                    if s1 == s2 {
                                        // d(CᵀC) = gᵀC + Cᵀg = A + Aᵀ with A = gᵀC
                                        accumulate_products(o, &factors, n_max, g, n_max, c2, stride_lm);
                                        symmetrize(o, l_max, n_max);
                                    } else if sp == s1 {
                                        accumulate_products(o, &factors, n_max, g, n_max, c2, stride_lm);
                                    } else {
                                        accumulate_products(o, &factors, n_max, c1, stride_lm, g, n_max);
                                    }
                                }
                                None => {
                                    let g = &d.centre_gradient[x * n_lm * stride_lm..];
                                    product_derivative(o, &factors, n_max, &g[s1 * n_max..], &g[s2 * n_max..], c1, c2, stride_lm, s1 == s2, l_max);
                                }
                            }
                        }
                    }
                });
                let gb = TensorBlock::new(
                    Labels::new(&["sample", "system", "atom"], samples),
                    vec![Labels::range("xyz", 3)],
                    properties.clone(),
                    grad,
                )?;
                block.gradients.push(("positions".into(), gb));
            }
            if flags.strain {
                let mut grad = vec![0.0; rows.len() * 9 * n_props];
                grad.par_chunks_mut(9 * n_props).zip(rows.par_iter()).for_each(|(out, d)| {
                    let c1 = &d.coefficients[s1 * n_max..];
                    let c2 = &d.coefficients[s2 * n_max..];
                    for ab in 0..9 {
                        let o = &mut out[ab * n_props..][..n_props];
                        let g = &d.strain_gradient[ab * n_lm * stride_lm..];
                        product_derivative(o, &factors, n_max, &g[s1 * n_max..], &g[s2 * n_max..], c1, c2, stride_lm, s1 == s2, l_max);
                    }
                });
                // featomic 0.6.7 names the strain components (xyz_2, xyz_1) in
                // this order; values[a][b] = ∂/∂ε_ab
                let gb = TensorBlock::new(
                    Labels::range("sample", rows.len()),
                    vec![Labels::range("xyz_2", 3), Labels::range("xyz_1", 3)],
                    properties.clone(),
                    grad,
                )?;
                block.gradients.push(("strain".into(), gb));
            }
            key_values.extend_from_slice(&key);
            blocks.push(block);
        }
        TensorMap::new(Labels::new(&KEY_NAMES, key_values), blocks)
    }
}
