//! Tabulated radial integrals: one cubic Hermite spline per angular channel
//! l, each with its own number of radial functions (a "ragged" basis), as in
//! featomic's `Explicit` basis with `Tabulated` radial functions.
//!
//! The tables either come from the user (featomic's JSON points, any
//! sorted positions, evaluated with a binary search) or are built here from
//! an exact radial integral with featomic's Python refinement rule
//! ([`tabulate_like_featomic_python`]), so that acdc reproduces
//! `featomic.splines.SoapSpliner` node for node.

use super::RadialIntegral;
use crate::error::{Error, Result};

/// Largest number of nodes the refinement may reach (featomic's Python
/// spliner stops with an error at 50 000 intervals).
pub const MAX_TABULATED_INTERVALS: usize = 50_000;

/// A cubic Hermite spline of `size` functions on sorted, not necessarily
/// uniform, nodes. Data per node: `[values…, derivatives…]`.
#[derive(Debug, Clone, PartialEq)]
pub struct TabulatedSpline {
    size: usize,
    positions: Vec<f64>,
    data: Vec<f64>,
}

impl TabulatedSpline {
    /// Builds a spline from nodes `(position, values, derivatives)`; they
    /// are sorted by position. `what` names the table in errors.
    ///
    /// Errors: fewer than 2 nodes, non-finite entries, values or
    /// derivatives of different lengths, or two nodes at the same position.
    pub fn new(what: &str, mut points: Vec<(f64, Vec<f64>, Vec<f64>)>) -> Result<TabulatedSpline> {
        if points.len() < 2 {
            return Err(Error::InvalidParameter(format!("{what}: a tabulated radial basis needs at least 2 points, got {}", points.len())));
        }
        let size = points[0].1.len();
        for (k, (position, values, derivatives)) in points.iter().enumerate() {
            if !position.is_finite() {
                return Err(Error::InvalidParameter(format!("{what}.points[{k}].position must be a finite number, got {position}")));
            }
            if values.len() != size || derivatives.len() != size {
                return Err(Error::InvalidParameter(format!(
                    "{what}.points[{k}]: every point must have {size} values and {size} derivatives (as the first), got {} and {}",
                    values.len(),
                    derivatives.len()
                )));
            }
            if let Some(bad) = values.iter().chain(derivatives).find(|v| !v.is_finite()) {
                return Err(Error::InvalidParameter(format!("{what}.points[{k}] contains a non-finite number ({bad})")));
            }
        }
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        if let Some(w) = points.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(Error::InvalidParameter(format!("{what}: two points have the same position {}", w[0].0)));
        }
        let mut positions = Vec::with_capacity(points.len());
        let mut data = Vec::with_capacity(points.len() * 2 * size);
        for (position, values, derivatives) in points {
            positions.push(position);
            data.extend_from_slice(&values);
            data.extend_from_slice(&derivatives);
        }
        Ok(TabulatedSpline { size, positions, data })
    }

    /// Number of splined functions.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Node positions (Å), sorted.
    pub fn positions(&self) -> &[f64] {
        &self.positions
    }

    /// Values at node `k`.
    pub fn node_values(&self, k: usize) -> &[f64] {
        &self.data[k * 2 * self.size..][..self.size]
    }

    /// Derivatives at node `k`.
    pub fn node_derivatives(&self, k: usize) -> &[f64] {
        &self.data[(k * 2 + 1) * self.size..][..self.size]
    }

    /// Evaluates all functions (and derivatives) at `x`: the interval is
    /// found by binary search (a node belongs to the interval it starts;
    /// the last node to the last interval), outside the nodes the end
    /// intervals extrapolate.
    #[inline]
    pub fn compute(&self, x: f64, values: &mut [f64], derivatives: Option<&mut [f64]>) {
        let n = self.positions.len();
        let k = self.positions.partition_point(|&p| p <= x).saturating_sub(1).min(n - 2);
        let (x_k, x_k1) = (self.positions[k], self.positions[k + 1]);
        let delta = x_k1 - x_k;
        let t = (x - x_k) / delta;
        let (t2, t3) = (t * t, t * t * t);
        let h00 = 2.0 * t3 - 3.0 * t2 + 1.0;
        let h10 = t3 - 2.0 * t2 + t;
        let h01 = -2.0 * t3 + 3.0 * t2;
        let h11 = t3 - t2;
        let s = self.size;
        let first = &self.data[k * 2 * s..(k + 1) * 2 * s];
        let second = &self.data[(k + 1) * 2 * s..(k + 2) * 2 * s];
        let (p0, m0) = first.split_at(s);
        let (p1, m1) = second.split_at(s);
        for f in 0..s {
            values[f] = h00 * p0[f] + h10 * delta * m0[f] + h01 * p1[f] + h11 * delta * m1[f];
        }
        if let Some(derivatives) = derivatives {
            let d00 = 6.0 * (t2 - t);
            let d10 = 3.0 * t2 - 4.0 * t + 1.0;
            let d01 = -d00;
            let d11 = 3.0 * t2 - 2.0 * t;
            let inv = 1.0 / delta;
            for f in 0..s {
                derivatives[f] = d00 * p0[f] * inv + d10 * m0[f] + d01 * p1[f] * inv + d11 * m1[f];
            }
        }
    }
}

/// numpy's `linspace(start, stop, count)`: `start + i·step`, the last
/// point exactly `stop`.
fn linspace(start: f64, stop: f64, count: usize) -> Vec<f64> {
    if count == 1 {
        return vec![start];
    }
    let step = (stop - start) / (count - 1) as f64;
    let mut out: Vec<f64> = (0..count).map(|i| start + i as f64 * step).collect();
    out[count - 1] = stop;
    out
}

/// Tabulates groups of functions on [start, stop] exactly as featomic's
/// Python `Spline.with_accuracy` does for each group separately: 11
/// equidistant nodes, then, while neither the mean absolute error nor the
/// mean relative error (over exact values above 1e-16 in magnitude) of
/// the spline at the interval midpoints is below `accuracy`, insert the
/// midpoints. Every group (an angular channel) converges on its own;
/// `function(x, values, derivatives)` fills all Σ `group_sizes` functions.
///
/// Errors: `accuracy` not positive, 50 000 intervals reached (numerical),
/// or a non-finite function value (numerical).
pub fn tabulate_like_featomic_python<F>(start: f64, stop: f64, group_sizes: &[usize], accuracy: f64, mut function: F) -> Result<Vec<TabulatedSpline>>
where
    F: FnMut(f64, &mut [f64], &mut [f64]),
{
    if !(accuracy.is_finite() && accuracy > 0.0) {
        return Err(Error::InvalidParameter(format!("spline_accuracy must be a positive number, got {accuracy}")));
    }
    let total: usize = group_sizes.iter().sum();
    let offsets: Vec<usize> = group_sizes.iter().scan(0, |acc, &s| { let o = *acc; *acc += s; Some(o) }).collect();
    let mut evaluate = |x: f64| -> Result<Vec<f64>> {
        let mut block = vec![0.0; 2 * total];
        let (values, derivatives) = block.split_at_mut(total);
        function(x, values, derivatives);
        if let Some(bad) = block.iter().find(|v| !v.is_finite()) {
            return Err(Error::Numerical(format!("the radial integral at r = {x} Å is not finite ({bad})")));
        }
        Ok(block)
    };
    let mut positions = linspace(start, stop, 11);
    let mut data: Vec<Vec<f64>> = positions.iter().map(|&x| evaluate(x)).collect::<Result<_>>()?;
    let mut converged: Vec<Option<usize>> = group_sizes.iter().map(|&s| if s == 0 { Some(11) } else { None }).collect();
    while converged.iter().any(Option::is_none) {
        let n_int = positions.len() - 1;
        if n_int >= MAX_TABULATED_INTERVALS {
            return Err(Error::Numerical(format!(
                "radial integral spline did not reach spline_accuracy {accuracy:e} with {MAX_TABULATED_INTERVALS} intervals; use a larger spline_accuracy"
            )));
        }
        let half = (positions[1] - positions[0]) / 2.0;
        let mids = linspace(start + half, stop - half, n_int);
        let mid_data: Vec<Vec<f64>> = mids.iter().map(|&x| evaluate(x)).collect::<Result<_>>()?;
        let delta = positions[1] - positions[0];
        let (mut absolute, mut relative, mut relative_count) = (vec![0.0; group_sizes.len()], vec![0.0; group_sizes.len()], vec![0usize; group_sizes.len()]);
        for (m, &x) in mids.iter().enumerate() {
            // the Python spline's uniform lookup
            let k = ((x / delta).floor() as usize).min(positions.len() - 2);
            let t = (x - k as f64 * delta) / delta;
            let (t2, t3) = (t * t, t * t * t);
            let (h00, h10, h01, h11) = (2.0 * t3 - 3.0 * t2 + 1.0, t3 - 2.0 * t2 + t, -2.0 * t3 + 3.0 * t2, t3 - t2);
            let (a, b) = (&data[k], &data[k + 1]);
            for (g, (&offset, &size)) in offsets.iter().zip(group_sizes).enumerate() {
                if converged[g].is_some() {
                    continue;
                }
                for f in offset..offset + size {
                    let estimate = h00 * a[f] + h10 * delta * a[total + f] + h01 * b[f] + h11 * delta * b[total + f];
                    let exact = mid_data[m][f];
                    absolute[g] += (estimate - exact).abs();
                    if exact.abs() > 1e-16 {
                        relative[g] += ((estimate - exact) / exact).abs();
                        relative_count[g] += 1;
                    }
                }
            }
        }
        for (g, &size) in group_sizes.iter().enumerate() {
            if converged[g].is_some() {
                continue;
            }
            let mae = absolute[g] / (n_int * size) as f64;
            let mre = if relative_count[g] > 0 { relative[g] / relative_count[g] as f64 } else { f64::NAN };
            if mae < accuracy || mre < accuracy {
                converged[g] = Some(positions.len());
            }
        }
        if converged.iter().all(Option::is_some) {
            break;
        }
        let mut new_positions = Vec::with_capacity(positions.len() + n_int);
        let mut new_data = Vec::with_capacity(positions.len() + n_int);
        for k in 0..positions.len() {
            new_positions.push(positions[k]);
            new_data.push(std::mem::take(&mut data[k]));
            if k < n_int {
                new_positions.push(mids[k]);
                new_data.push(mid_data[k].clone());
            }
        }
        positions = new_positions;
        data = new_data;
    }
    let n_points = positions.len();
    let mut splines = Vec::with_capacity(group_sizes.len());
    for (g, (&offset, &size)) in offsets.iter().zip(group_sizes).enumerate() {
        let points = converged[g].expect("converged");
        let stride = (n_points - 1) / (points - 1);
        let mut group_positions = Vec::with_capacity(points);
        let mut group_data = Vec::with_capacity(points * 2 * size);
        for k in (0..n_points).step_by(stride) {
            group_positions.push(positions[k]);
            group_data.extend_from_slice(&data[k][offset..offset + size]);
            group_data.extend_from_slice(&data[k][total + offset..total + offset + size]);
        }
        splines.push(TabulatedSpline { size, positions: group_positions, data: group_data });
    }
    Ok(splines)
}

/// The nodes of a radial spline: positions (Å), values and derivatives
/// (Å⁻¹) laid out `[node][function]`.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeTable {
    /// Number of functions.
    pub size: usize,
    /// Node positions in Å.
    pub positions: Vec<f64>,
    /// Values, `[node][function]`.
    pub values: Vec<f64>,
    /// Derivatives, `[node][function]`.
    pub derivatives: Vec<f64>,
}

impl NodeTable {
    /// The nodes of a featomic-native (uniform) spline.
    pub fn from_spline(s: &crate::math::spline::HermiteSpline) -> NodeTable {
        NodeTable {
            size: s.n_functions(),
            positions: s.positions().to_vec(),
            values: (0..s.len()).flat_map(|k| s.node_values(k).to_vec()).collect(),
            derivatives: (0..s.len()).flat_map(|k| s.node_derivatives(k).to_vec()).collect(),
        }
    }
}

/// How the radial functions of one angular channel are evaluated.
#[derive(Clone)]
pub enum ChannelRadial {
    /// Not part of the basis (no functions).
    Absent,
    /// A table (featomic `Tabulated`, or built by acdc).
    Tabulated(TabulatedSpline),
    /// A featomic-native spline (uniform grid) of `size` functions.
    Native(crate::math::spline::HermiteSpline),
    /// An exact integral: channel `l` of this integral.
    Exact(std::sync::Arc<dyn RadialIntegral>),
}

/// A radial integral with its own set of radial functions for every
/// angular channel: `sizes[l]` functions for channel l (0 when the
/// channel is absent). [`RadialIntegral::size`] reports the largest size;
/// entries n ≥ sizes[l] of the output are zero (padding), so every dense
/// consumer works unchanged and the padded entries are dropped from the
/// labelled outputs.
#[derive(Clone)]
pub struct RaggedRadialIntegral {
    sizes: Vec<usize>,
    n_max: usize,
    channels: Vec<ChannelRadial>,
}

impl std::fmt::Debug for RaggedRadialIntegral {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaggedRadialIntegral").field("sizes", &self.sizes).finish()
    }
}

impl RaggedRadialIntegral {
    /// Assembles the channels; `sizes[l]` must be the number of functions
    /// of `channels[l]`.
    pub fn new(sizes: Vec<usize>, channels: Vec<ChannelRadial>) -> RaggedRadialIntegral {
        let n_max = sizes.iter().copied().max().unwrap_or(0).max(1);
        RaggedRadialIntegral { sizes, n_max, channels }
    }

    /// Number of radial functions of each angular channel.
    pub fn sizes(&self) -> &[usize] {
        &self.sizes
    }

    /// The node table (positions, values `[k][f]`, derivatives `[k][f]`) of
    /// channel `l`: None for an absent channel; an error for an exact
    /// (untabulated) channel.
    pub fn node_table(&self, l: usize) -> Result<Option<NodeTable>> {
        Ok(match &self.channels[l] {
            ChannelRadial::Absent => None,
            ChannelRadial::Tabulated(t) => Some(NodeTable {
                size: t.size,
                positions: t.positions.clone(),
                values: (0..t.positions.len()).flat_map(|k| t.node_values(k).to_vec()).collect(),
                derivatives: (0..t.positions.len()).flat_map(|k| t.node_derivatives(k).to_vec()).collect(),
            }),
            ChannelRadial::Native(s) => Some(NodeTable::from_spline(s)),
            ChannelRadial::Exact(_) => {
                return Err(Error::InvalidParameter(format!(
                    "angular channel {l} is evaluated exactly (spline_accuracy null): it has no spline nodes"
                )))
            }
        })
    }

    /// The tabulated spline of channel `l`, if it is one.
    pub fn table(&self, l: usize) -> Option<&TabulatedSpline> {
        match self.channels.get(l) {
            Some(ChannelRadial::Tabulated(t)) => Some(t),
            _ => None,
        }
    }
}

impl RadialIntegral for RaggedRadialIntegral {
    fn max_angular(&self) -> usize {
        self.sizes.len() - 1
    }

    fn size(&self) -> usize {
        self.n_max
    }

    fn compute(&self, r: f64, values: &mut [f64], mut derivatives: Option<&mut [f64]>) {
        let n_max = self.n_max;
        let total = self.sizes.len() * n_max;
        values[..total].fill(0.0);
        if let Some(d) = derivatives.as_deref_mut() {
            d[..total].fill(0.0);
        }
        for (l, channel) in self.channels.iter().enumerate() {
            let size = self.sizes[l];
            let out = &mut values[l * n_max..l * n_max + size];
            match channel {
                ChannelRadial::Absent => {}
                ChannelRadial::Tabulated(t) => t.compute(r, out, derivatives.as_deref_mut().map(|d| &mut d[l * n_max..l * n_max + size])),
                ChannelRadial::Native(s) => s.compute(r, out, derivatives.as_deref_mut().map(|d| &mut d[l * n_max..l * n_max + size])),
                ChannelRadial::Exact(integral) => {
                    // channel l of an integral with max_angular = l and this size
                    // (only for exact integrals, spline_accuracy null: allocates)
                    let all = (integral.max_angular() + 1) * integral.size();
                    let mut v = vec![0.0; all];
                    let mut d = vec![0.0; all];
                    integral.compute(r, &mut v, Some(&mut d));
                    let row = integral.max_angular() * integral.size();
                    out.copy_from_slice(&v[row..row + size]);
                    if let Some(dd) = derivatives.as_deref_mut() {
                        dd[l * n_max..l * n_max + size].copy_from_slice(&d[row..row + size]);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_search_and_uniform_agree() {
        let xs = linspace(0.0, 3.0, 31);
        let points: Vec<_> = xs.iter().map(|&x: &f64| (x, vec![x.sin(), x * x], vec![x.cos(), 2.0 * x])).collect();
        let t = TabulatedSpline::new("t", points.into_iter().rev().collect()).unwrap();
        let (mut v, mut d) = ([0.0; 2], [0.0; 2]);
        for &x in &[0.0, 0.05, 1.0, 1.2345, 2.999, 3.0] {
            t.compute(x, &mut v, Some(&mut d));
            assert!((v[0] - x.sin()).abs() < 1e-6 && (v[1] - x * x).abs() < 1e-12, "{x}");
            assert!((d[1] - 2.0 * x).abs() < 1e-10, "{x}");
        }
        assert!(TabulatedSpline::new("t", vec![(0.0, vec![1.0], vec![0.0])]).is_err());
        let e = TabulatedSpline::new("basis.by_angular.0", vec![(0.0, vec![1.0], vec![0.0]), (1.0, vec![1.0, 2.0], vec![0.0, 0.0])]).unwrap_err();
        assert!(e.to_string().contains("basis.by_angular.0.points[1]"), "{e}");
    }

    #[test]
    fn python_refinement_node_counts() {
        // sin on [0, 3]: the node count is 10·2^k + 1 and the spline meets the accuracy
        let s = tabulate_like_featomic_python(0.0, 3.0, &[1, 1], 1e-8, |x, v, d| {
            v[0] = x.sin();
            d[0] = x.cos();
            v[1] = 1.0 + x;
            d[1] = 1.0;
        })
        .unwrap();
        assert_eq!(s[1].positions().len(), 11);
        let n = s[0].positions().len() - 1;
        assert!(n % 10 == 0 && (n / 10).is_power_of_two() && n > 10);
    }
}
