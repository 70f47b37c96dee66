//! Data-driven compression of the SOAP basis: radial basis tables, the
//! contracted radial basis and the pseudo-element coupling fitted in the core.
use acdc_core::calculators::soap::expansion::Expansion;
use acdc_core::calculators::soap::hypers::SoapHypers;
use napi::bindgen_prelude::*;
use napi_derive::napi;

use acdc_core::analysis::compression::{self, AlchemicalCoupling, ContractedChannel};

use crate::errors::{ensure_thread_pool, guarded, to_napi};
use crate::models::Job;
use crate::system::{to_core_list, SystemData};

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

/// A fitted pseudo-element coupling (`density.alchemical`).
#[napi(object, object_from_js = false)]
pub struct AlchemicalCouplingData {
    /// elements of the systems, sorted
    pub types: Vec<i32>,
    /// U: pseudo-elements × elements, orthonormal rows
    pub coupling: Vec<Vec<f64>>,
}

fn coupling_to_js(c: AlchemicalCoupling) -> Result<AlchemicalCouplingData> {
    Ok(AlchemicalCouplingData { types: c.types, coupling: c.coupling })
}

fn coupling_work(systems: &[SystemData], hypers: String) -> Result<impl FnOnce() -> acdc_core::Result<AlchemicalCoupling> + Send + 'static> {
    let systems = to_core_list(systems)?;
    Ok(move || compression::element_components(&systems, &hypers))
}

/// The principal directions of the element channels of species-resolved
/// SOAP hypers (JSON) on structures, all S of them: the rows of the
/// pseudo-element coupling, best first (synchronously).
#[napi]
pub fn alchemical_components_sync(systems: Vec<SystemData>, hypers: String) -> Result<AlchemicalCouplingData> {
    guarded("alchemicalComponents", || {
        ensure_thread_pool();
        coupling_to_js(coupling_work(&systems, hypers)?().map_err(to_napi)?)
    })
}

/// The principal directions of the element channels, off the event loop.
#[napi(ts_return_type = "Promise<AlchemicalCouplingData>")]
pub fn alchemical_components(systems: Vec<SystemData>, hypers: String) -> Result<AsyncTask<Job<AlchemicalCoupling, AlchemicalCouplingData>>> {
    guarded("alchemicalComponentsAsync", || Ok(Job::new("alchemicalComponentsAsync", coupling_work(&systems, hypers)?, coupling_to_js)))
}

fn contraction_to_js(c: Vec<ContractedChannel>) -> Result<Vec<RadialTableData>> {
    Ok(c
        .into_iter()
        .map(|t| RadialTableData {
            l: t.l as u32,
            size: t.size as u32,
            positions: Float64Array::new(t.positions),
            values: Float64Array::new(t.values),
            derivatives: Float64Array::new(t.derivatives),
        })
        .collect())
}

fn contraction_work(systems: &[SystemData], hypers: String, max_radial: u32) -> Result<impl FnOnce() -> acdc_core::Result<Vec<ContractedChannel>> + Send + 'static> {
    let systems = to_core_list(systems)?;
    Ok(move || compression::fit_radial_contraction(&systems, &hypers, max_radial as usize))
}

/// Fits a contracted radial basis to structures: the contracted integrals at the spline nodes, per l (synchronously).
#[napi]
pub fn fit_radial_contraction_sync(systems: Vec<SystemData>, hypers: String, max_radial: u32) -> Result<Vec<RadialTableData>> {
    guarded("fitRadialContraction", || {
        ensure_thread_pool();
        contraction_to_js(contraction_work(&systems, hypers, max_radial)?().map_err(to_napi)?)
    })
}

/// Fits a contracted radial basis off the event loop.
#[napi(ts_return_type = "Promise<RadialTableData[]>")]
pub fn fit_radial_contraction(systems: Vec<SystemData>, hypers: String, max_radial: u32) -> Result<AsyncTask<Job<Vec<ContractedChannel>, Vec<RadialTableData>>>> {
    guarded("fitRadialContractionAsync", || Ok(Job::new("fitRadialContractionAsync", contraction_work(&systems, hypers, max_radial)?, contraction_to_js)))
}
