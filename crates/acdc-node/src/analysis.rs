//! Analysis of dense matrices: PCA, feature reconstruction measures and
//! local prediction rigidity.
use acdc_core::analysis::kernel_ridge::CurveKernel;
use acdc_core::analysis::{self, KernelPca, Pca, Rigidity, Split};
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

/// Kernel principal components.
#[napi(object, object_from_js = false)]
pub struct KernelPcaData {
    /// samples × n projections (eigenvector × √eigenvalue)
    pub scores: MatrixData,
    /// the n largest eigenvalues of the centred kernel, decreasing
    pub eigenvalues: Float64Array,
    /// samples × n unit eigenvectors (columns)
    pub eigenvectors: MatrixData,
}

fn kernel_pca_to_js(p: KernelPca) -> Result<KernelPcaData> {
    Ok(KernelPcaData { scores: dense_to_js(p.scores), eigenvalues: Float64Array::new(p.eigenvalues), eigenvectors: dense_to_js(p.eigenvectors) })
}

fn kernel_pca_work(k: &MatrixData, n: u32) -> Result<impl FnOnce() -> acdc_core::Result<KernelPca> + Send + 'static> {
    let k = dense_from_js("kernel", k)?;
    Ok(move || analysis::kernel_pca(&k, n as usize))
}

/// Kernel PCA of a symmetric kernel matrix (synchronously).
#[napi]
pub fn kernel_pca_sync(kernel: MatrixData, n: u32) -> Result<KernelPcaData> {
    guarded("kernelPca", || {
        ensure_thread_pool();
        kernel_pca_to_js(kernel_pca_work(&kernel, n)?().map_err(to_napi)?)
    })
}

/// Kernel PCA of a symmetric kernel matrix off the event loop.
#[napi(ts_return_type = "Promise<KernelPcaData>")]
pub fn kernel_pca(kernel: MatrixData, n: u32) -> Result<AsyncTask<Job<KernelPca, KernelPcaData>>> {
    guarded("kernelPcaAsync", || Ok(Job::new("kernelPcaAsync", kernel_pca_work(&kernel, n)?, kernel_pca_to_js)))
}

/// A learning curve of kernel ridge regression.
#[napi(object)]
pub struct LearningCurveOptions {
    /// "linear" (input: features, centred per training set) or "precomputed" (input: a kernel)
    pub kernel: String,
    /// targets, one per row
    pub y: Float64Array,
    /// training pool: the training set of size s is its first s rows
    pub pool: Vec<u32>,
    /// test rows
    pub test: Vec<u32>,
    /// training sizes
    pub sizes: Vec<u32>,
    /// regulariser relative to the mean diagonal of the training kernel
    pub regularizer: f64,
}

fn learning_curve_work(input: &MatrixData, o: &LearningCurveOptions) -> Result<impl FnOnce() -> acdc_core::Result<Vec<f64>> + Send + 'static> {
    let kernel = match o.kernel.as_str() {
        "linear" => CurveKernel::Linear,
        "precomputed" => CurveKernel::Precomputed,
        other => return Err(to_napi(acdc_core::Error::InvalidParameter(format!("kernel is \"{other}\" (expected \"linear\" or \"precomputed\")")))),
    };
    let input = dense_from_js("X", input)?;
    let y = o.y.to_vec();
    let idx = |v: &[u32]| v.iter().map(|&i| i as usize).collect::<Vec<_>>();
    let (pool, test, sizes, relative) = (idx(&o.pool), idx(&o.test), idx(&o.sizes), o.regularizer);
    Ok(move || analysis::kernel_ridge::learning_curve(&input, kernel, &y, &pool, &test, &sizes, relative))
}

fn curve_to_js(v: Vec<f64>) -> Result<Float64Array> {
    Ok(Float64Array::new(v))
}

/// Test RMSE of kernel ridge regression per training size (synchronously).
#[napi]
pub fn kernel_ridge_learning_curve_sync(input: MatrixData, options: LearningCurveOptions) -> Result<Float64Array> {
    guarded("kernelRidgeLearningCurve", || {
        ensure_thread_pool();
        curve_to_js(learning_curve_work(&input, &options)?().map_err(to_napi)?)
    })
}

/// Test RMSE of kernel ridge regression per training size off the event loop.
#[napi(ts_return_type = "Promise<Float64Array>")]
pub fn kernel_ridge_learning_curve(input: MatrixData, options: LearningCurveOptions) -> Result<AsyncTask<Job<Vec<f64>, Float64Array>>> {
    guarded("kernelRidgeLearningCurveAsync", || Ok(Job::new("kernelRidgeLearningCurveAsync", learning_curve_work(&input, &options)?, curve_to_js)))
}
