//! Radial basis tables for data-driven contraction (fitRadialContraction).
use acdc_core::calculators::expansion::Expansion;
use acdc_core::calculators::hypers::SoapHypers;
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::errors::{guarded, to_napi};

/// The spline nodes of one angular channel of a radial basis.
#[napi(object)]
pub struct RadialTableData {
    /// Angular channel.
    pub l: u32,
    /// Number of radial functions.
    pub size: u32,
    /// Node positions (Å).
    pub positions: Float64Array,
    /// Radial integrals at the nodes, row-major [node][function].
    pub values: Float64Array,
    /// Their derivatives (Å⁻¹), row-major [node][function].
    pub derivatives: Float64Array,
}

/// The spline nodes of the radial integrals of SOAP hyper-parameters
/// (JSON text), one entry per angular channel of the basis.
#[napi]
pub fn radial_tables_sync(hypers: String) -> Result<Vec<RadialTableData>> {
    guarded("radialTables", || {
        let (_, settings) = SoapHypers::from_json(acdc_core::calculators::SphericalExpansion::NAME, &hypers).map_err(to_napi)?;
        let expansion = Expansion::new(settings).map_err(to_napi)?;
        let tables = expansion.node_tables().map_err(to_napi)?;
        Ok(tables
            .into_iter()
            .enumerate()
            .filter_map(|(l, t)| {
                t.map(|t| RadialTableData {
                    l: l as u32,
                    size: t.size as u32,
                    positions: Float64Array::new(t.positions),
                    values: Float64Array::new(t.values),
                    derivatives: Float64Array::new(t.derivatives),
                })
            })
            .collect())
    })
}
