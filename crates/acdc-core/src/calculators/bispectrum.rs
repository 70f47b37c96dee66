//! SOAP bispectrum: the rotational invariants of the ν = 3 density correlation,
//!
//! B^{l₁l₂l₃}_{a₁n₁ a₂n₂ a₃n₃}(i) = Σ_{m₁m₂m₃} Ĉ^{l₁l₂l₃}_{m₁m₂m₃} Ĉ^{l₃l₃0}_{m₃m₃0}
//!     ⟨a₁n₁l₁m₁|ρ_i⟩⟨a₂n₂l₂m₂|ρ_i⟩⟨a₃n₃l₃m₃|ρ_i⟩,
//!
//! i.e. the λ = 0, σ = +1 blocks of [`DensityCorrelations`] with
//! n_correlations = 2 on the spherical expansion (neighbour types moved to
//! properties), with l₁ ≤ l₂ ≤ l₃ and l₁ + l₂ + l₃ even. The same numbers as
//! featomic's `DensityCorrelations(n_correlations=2)` at o3_lambda = 0.
//! A. P. Bartók, R. Kondor, G. Csányi, Phys. Rev. B 87, 184115 (2013),
//! doi:10.1103/PhysRevB.87.184115; J. Nigam, S. Pozdnyakov, M. Ceriotti,
//! J. Chem. Phys. 153, 121101 (2020), doi:10.1063/5.0021116.
//!
//! Keys: (center_type). Properties: (l_1, l_2, k_2, l_3, neighbor_1_type,
//! n_1, neighbor_2_type, n_2, neighbor_3_type, n_3), k_2 = l₃ being the
//! intermediate coupling; every neighbour type of the systems appears (zeros
//! where absent). Gradients (positions, strain) follow from the expansion's
//! by the product rule.
use super::density_correlations::DensityCorrelations;
use super::shared::Environments;
use super::soap::hypers::SoapHypers;
use super::{Calculator, ComputeOptions, SphericalExpansion};
use crate::error::{Error, Result};
use crate::system::System;
use crate::tensor::{ops, Labels, TensorBlock, TensorMap};

/// SOAP bispectrum with featomic 0.6 SOAP hyper-parameters.
pub struct SoapBispectrum {
    parameters: String,
    expansion: SphericalExpansion,
    correlations: DensityCorrelations,
    max_angular: usize,
    cutoff: f64,
}

impl SoapBispectrum {
    /// Parses and validates the hyper-parameters.
    pub fn new(hypers: &str) -> Result<SoapBispectrum> {
        let (_, settings) = SoapHypers::from_json("soap_bispectrum", hypers)?;
        if settings.alchemical.is_some() {
            return Err(crate::Error::InvalidParameter(
                "density.alchemical is supported by SphericalExpansion and SoapPowerSpectrum only".into(),
            ));
        }
        let max_angular = settings.max_angular;
        Ok(SoapBispectrum {
            parameters: hypers.to_string(),
            expansion: SphericalExpansion::new(hypers)?,
            correlations: DensityCorrelations::new(2, max_angular, true)?,
            max_angular,
            cutoff: settings.cutoff,
        })
    }
}

impl Calculator for SoapBispectrum {
    fn name(&self) -> &str {
        "soap_bispectrum"
    }

    fn parameters(&self) -> &str {
        &self.parameters
    }

    fn keys(&self, systems: &[System]) -> Result<Labels> {
        let env = Environments::new(systems, self.cutoff)?;
        Ok(Labels::new(&["center_type"], env.species.clone()))
    }

    fn compute(&self, systems: &[System], options: &ComputeOptions) -> Result<TensorMap> {
        if let Some(sel) = &options.selected_keys {
            if let Some(bad) = sel.names.iter().find(|n| *n != "center_type") {
                return Err(Error::InvalidParameter(format!("selectedKeys has a dimension named \"{bad}\" (keys are [\"center_type\"])")));
            }
        }
        // every species of the batch, as the expansion sees them (no second neighbour search)
        let mut species: Vec<i32> = systems.iter().flat_map(|s| s.types.iter().copied()).collect();
        species.sort_unstable();
        species.dedup();
        let density = self.expansion.compute(systems, options)?;
        options.check_cancelled()?;
        let all_types = Labels::new(&["neighbor_type"], species);
        let density = ops::keys_to_properties(&density, &all_types)?;
        // λ = 0 at the end needs intermediate k₂ = l₃ ≤ l_max only
        let selected = Labels::new(&["o3_lambda", "o3_sigma"], vec![0, 1]);
        let nu3 = self.correlations.compute(&density, Some(self.max_angular), Some(&selected))?;
        let moved = Labels::new(&["l_1", "l_2", "k_2", "l_3"], Vec::new());
        let merged = ops::keys_to_properties(&nu3, &moved)?;
        let centre = merged.keys.dimension("center_type").unwrap_or(0);
        let mut keys = Vec::new();
        let mut blocks = Vec::new();
        for (k, block) in merged.blocks.into_iter().enumerate() {
            keys.push(merged.keys.row(k)[centre]);
            // the single o3_mu = 0 component is dropped: same memory layout
            let mut out = TensorBlock::new(block.samples, vec![], block.properties, block.values)?;
            for (parameter, g) in block.gradients {
                let mut components = g.components;
                components.pop();
                out.gradients.push((parameter, TensorBlock::new(g.samples, components, g.properties, g.values)?));
            }
            blocks.push(out);
        }
        TensorMap::new(Labels::new(&["center_type"], keys), blocks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYPERS: &str = r#"{"cutoff": {"radius": 3.5, "smoothing": {"type": "ShiftedCosine", "width": 0.5}},
        "density": {"type": "Gaussian", "width": 0.3},
        "basis": {"type": "TensorProduct", "max_angular": 3, "radial": {"type": "Gto", "max_radial": 1}, "spline_accuracy": null}}"#;

    fn system(rotation: [[f64; 3]; 3]) -> System {
        let positions: Vec<[f64; 3]> = [[0.0, 0.0, 0.0], [1.2, 0.1, -0.1], [-0.5, 0.9, 0.2], [0.3, -0.4, 1.5]]
            .iter()
            .map(|p| [0, 1, 2].map(|i| (0..3).map(|k| rotation[i][k] * p[k]).sum()))
            .collect();
        System::new(vec![8, 6, 1, 1], positions, [[0.0; 3]; 3], [false; 3]).unwrap()
    }

    /// Invariants: a rotation leaves every value unchanged; l₁ ≤ l₂ ≤ l₃ with an even sum.
    #[test]
    fn rotation_invariant() {
        let (s, c) = (0.6f64.sin(), 0.6f64.cos());
        let r = [[c, -s, 0.0], [s * 0.8, c * 0.8, -0.6], [s * 0.6, c * 0.6, 0.8]];
        let calc = SoapBispectrum::new(HYPERS).unwrap();
        let a = calc.compute(&[system([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])], &ComputeOptions::default()).unwrap();
        let b = calc.compute(&[system(r)], &ComputeOptions::default()).unwrap();
        assert_eq!(a.keys, Labels::new(&["center_type"], vec![1, 6, 8]));
        let scale = a.blocks.iter().flat_map(|x| x.values.iter()).fold(0.0f64, |m, v| m.max(v.abs()));
        for (x, y) in a.blocks.iter().zip(&b.blocks) {
            assert_eq!(x.properties, y.properties);
            for row in x.properties.rows() {
                assert!(row[0] <= row[1] && row[1] <= row[3] && row[2] == row[3] && (row[0] + row[1] + row[3]) % 2 == 0, "{row:?}");
            }
            for (u, v) in x.values.iter().zip(&y.values) {
                assert!((u - v).abs() < 1e-12 * scale, "{u} vs {v}");
            }
        }
    }

    #[test]
    fn selected_keys_name_center_type_only() {
        let calc = SoapBispectrum::new(HYPERS).unwrap();
        let options = ComputeOptions { selected_keys: Some(Labels::new(&["o3_lambda"], vec![0])), ..Default::default() };
        let e = calc.compute(&[system([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])], &options).err().unwrap();
        assert!(e.to_string().contains("o3_lambda"), "{e}");
    }
}
