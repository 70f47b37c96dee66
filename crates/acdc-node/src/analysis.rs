//! Analysis of dense matrices: PCA, feature reconstruction measures and
//! local prediction rigidity.
use acdc_core::analysis::{self, Pca, Rigidity, Split};
use acdc_core::math::linalg::Dense;
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::errors::{ensure_thread_pool, guarded, to_napi};
use crate::models::{dense_from_js, dense_to_js, Job, MatrixData};

fn split(train: Option<Vec<u32>>, test: Option<Vec<u32>>) -> Split {
    let conv = |v: Option<Vec<u32>>| v.map(|v| v.into_iter().map(|i| i as usize).collect());
    Split { train: conv(train), test: conv(test) }
}

fn number(v: f64) -> Result<f64> {
    Ok(v)
}

type Measure = fn(&Dense, &Dense, &Split) -> acdc_core::Result<f64>;

fn measure_work(
    measure: Measure,
    x: &MatrixData,
    y: &MatrixData,
    train: Option<Vec<u32>>,
    test: Option<Vec<u32>>,
) -> Result<impl FnOnce() -> acdc_core::Result<f64> + Send + 'static> {
    let x = dense_from_js("X", x)?;
    let y = dense_from_js("Y", y)?;
    let split = split(train, test);
    Ok(move || measure(&x, &y, &split))
}

/// Global feature reconstruction error of Y from X (synchronously).
#[napi]
pub fn gfre_sync(x: MatrixData, y: MatrixData, train: Option<Vec<u32>>, test: Option<Vec<u32>>) -> Result<f64> {
    guarded("gfre", || {
        ensure_thread_pool();
        measure_work(analysis::gfre, &x, &y, train, test)?().map_err(to_napi)
    })
}

/// Global feature reconstruction error off the event loop.
#[napi(ts_return_type = "Promise<number>")]
pub fn gfre(x: MatrixData, y: MatrixData, train: Option<Vec<u32>>, test: Option<Vec<u32>>) -> Result<AsyncTask<Job<f64, f64>>> {
    guarded("gfreAsync", || Ok(Job::new("gfreAsync", measure_work(analysis::gfre, &x, &y, train, test)?, number)))
}

/// Global feature reconstruction distortion of X → Y (synchronously).
#[napi]
pub fn gfrd_sync(x: MatrixData, y: MatrixData, train: Option<Vec<u32>>, test: Option<Vec<u32>>) -> Result<f64> {
    guarded("gfrd", || {
        ensure_thread_pool();
        measure_work(analysis::gfrd, &x, &y, train, test)?().map_err(to_napi)
    })
}

/// Global feature reconstruction distortion off the event loop.
#[napi(ts_return_type = "Promise<number>")]
pub fn gfrd(x: MatrixData, y: MatrixData, train: Option<Vec<u32>>, test: Option<Vec<u32>>) -> Result<AsyncTask<Job<f64, f64>>> {
    guarded("gfrdAsync", || Ok(Job::new("gfrdAsync", measure_work(analysis::gfrd, &x, &y, train, test)?, number)))
}

fn lfre_work(
    x: &MatrixData,
    y: &MatrixData,
    n_local: u32,
    train: Option<Vec<u32>>,
    test: Option<Vec<u32>>,
) -> Result<impl FnOnce() -> acdc_core::Result<f64> + Send + 'static> {
    let x = dense_from_js("X", x)?;
    let y = dense_from_js("Y", y)?;
    let split = split(train, test);
    Ok(move || analysis::lfre(&x, &y, n_local as usize, &split))
}

/// Local feature reconstruction error of Y from X (synchronously).
#[napi]
pub fn lfre_sync(x: MatrixData, y: MatrixData, n_local_points: u32, train: Option<Vec<u32>>, test: Option<Vec<u32>>) -> Result<f64> {
    guarded("lfre", || {
        ensure_thread_pool();
        lfre_work(&x, &y, n_local_points, train, test)?().map_err(to_napi)
    })
}

/// Local feature reconstruction error off the event loop.
#[napi(ts_return_type = "Promise<number>")]
pub fn lfre(x: MatrixData, y: MatrixData, n_local_points: u32, train: Option<Vec<u32>>, test: Option<Vec<u32>>) -> Result<AsyncTask<Job<f64, f64>>> {
    guarded("lfreAsync", || Ok(Job::new("lfreAsync", lfre_work(&x, &y, n_local_points, train, test)?, number)))
}

/// Local prediction rigidities, one array per test structure.
#[napi(object, object_from_js = false)]
pub struct RigidityData {
    /// LPR of each atom, per test structure
    pub lpr: Vec<Float64Array>,
    /// features minus the rank of the regularised covariance
    pub rank_diff: u32,
}

fn rigidity_to_js(r: Rigidity) -> Result<RigidityData> {
    Ok(RigidityData { lpr: r.lpr.into_iter().map(Float64Array::new).collect(), rank_diff: r.rank_diff as u32 })
}

fn rigidity_work(train: &[MatrixData], test: &[MatrixData], alpha: f64) -> Result<impl FnOnce() -> acdc_core::Result<Rigidity> + Send + 'static> {
    let train: Vec<Dense> = train.iter().enumerate().map(|(k, m)| dense_from_js(&format!("train[{k}]"), m)).collect::<Result<_>>()?;
    let test: Vec<Dense> = test.iter().enumerate().map(|(k, m)| dense_from_js(&format!("test[{k}]"), m)).collect::<Result<_>>()?;
    Ok(move || analysis::local_prediction_rigidity(&train, &test, alpha))
}

/// Local prediction rigidity (synchronously).
#[napi]
pub fn local_prediction_rigidity_sync(train: Vec<MatrixData>, test: Vec<MatrixData>, alpha: f64) -> Result<RigidityData> {
    guarded("localPredictionRigidity", || {
        ensure_thread_pool();
        rigidity_to_js(rigidity_work(&train, &test, alpha)?().map_err(to_napi)?)
    })
}

/// Local prediction rigidity off the event loop.
#[napi(ts_return_type = "Promise<RigidityData>")]
pub fn local_prediction_rigidity(train: Vec<MatrixData>, test: Vec<MatrixData>, alpha: f64) -> Result<AsyncTask<Job<Rigidity, RigidityData>>> {
    guarded("localPredictionRigidityAsync", || {
        Ok(Job::new("localPredictionRigidityAsync", rigidity_work(&train, &test, alpha)?, rigidity_to_js))
    })
}

/// Principal components.
#[napi(object, object_from_js = false)]
pub struct PcaData {
    /// samples × n projections
    pub scores: MatrixData,
    /// n × features directions (rows)
    pub components: MatrixData,
    /// variance along each component
    pub explained_variance: Float64Array,
    /// total variance of the data (sum of every column's variance)
    pub total_variance: f64,
    /// column means that were subtracted
    pub mean: Float64Array,
}

fn pca_to_js(p: Pca) -> Result<PcaData> {
    Ok(PcaData {
        scores: dense_to_js(p.scores),
        components: dense_to_js(p.components),
        explained_variance: Float64Array::new(p.explained_variance),
        total_variance: p.total_variance,
        mean: Float64Array::new(p.mean),
    })
}

fn pca_work(x: &MatrixData, n: u32) -> Result<impl FnOnce() -> acdc_core::Result<Pca> + Send + 'static> {
    let x = dense_from_js("X", x)?;
    Ok(move || analysis::pca(&x, n as usize))
}

/// Principal component analysis (synchronously).
#[napi]
pub fn pca_sync(x: MatrixData, n: u32) -> Result<PcaData> {
    guarded("pca", || {
        ensure_thread_pool();
        pca_to_js(pca_work(&x, n)?().map_err(to_napi)?)
    })
}

/// Principal component analysis off the event loop.
#[napi(ts_return_type = "Promise<PcaData>")]
pub fn pca(x: MatrixData, n: u32) -> Result<AsyncTask<Job<Pca, PcaData>>> {
    guarded("pcaAsync", || Ok(Job::new("pcaAsync", pca_work(&x, n)?, pca_to_js)))
}
