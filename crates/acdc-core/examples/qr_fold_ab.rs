// A/B of the streaming least-squares fold: nalgebra's QR of the stacked
// [R; A] against math::qr_fold::fold_rows, same inputs, alternating.
use nalgebra::{DMatrix, DVector};
use std::time::Instant;
fn main() {
    // usage: qr_fold_ab N P REPS (R is N × N, P new rows; RAYON_NUM_THREADS sets the threads)
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let [n, p, reps] = args[..] else {
        eprintln!("usage: qr_fold_ab N P REPS (positive integers)");
        std::process::exit(2);
    };
    let mut rng = acdc_core::math::random::LegacyRandomState::new(1);
    let r0 = DMatrix::from_fn(n, n, |i, j| if i <= j { rng.random_sample() + if i == j { 2.0 } else { 0.0 } } else { 0.0 });
    let a = DMatrix::from_fn(p, n, |_, _| rng.random_sample() - 0.5);
    let b = DVector::from_fn(p, |_, _| rng.random_sample());
    let (mut t_old, mut t_new) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        let t = Instant::now();
        let mut stack = DMatrix::<f64>::zeros(n + p, n);
        stack.view_mut((0, 0), (n, n)).copy_from(&r0);
        stack.view_mut((n, 0), (p, n)).copy_from(&a);
        let mut rhs = DVector::<f64>::zeros(n + p);
        rhs.rows_mut(n, p).copy_from(&b);
        let qr = stack.qr();
        qr.q_tr_mul(&mut rhs);
        let r1 = qr.r();
        t_old.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let mut r = r0.clone();
        let mut qtb = vec![0.0; n];
        let mut aw = a.as_slice().to_vec();
        let mut bw = b.as_slice().to_vec();
        acdc_core::math::qr_fold::fold_rows(r.as_mut_slice(), &mut qtb, &mut aw, &mut bw, n, p);
        t_new.push(t.elapsed().as_secs_f64());
        assert!((r1[(n - 1, n - 1)].abs() - r[(n - 1, n - 1)].abs()).abs() < 1e-8 * r[(n - 1, n - 1)].abs());
    }
    t_old.sort_by(f64::total_cmp);
    t_new.sort_by(f64::total_cmp);
    let (o, w) = (t_old[reps / 2], t_new[reps / 2]);
    println!("n {n} p {p} threads {}: nalgebra {:.1} ms, fold_rows {:.1} ms, ratio {:.3}", rayon::current_num_threads(), o * 1e3, w * 1e3, w / o);
}
