//! The memory floor of a large output: how long this machine takes to hand
//! out and write N bytes, single-threaded, in the ways a gradient block is
//! made. Used to state the floor of SOAP position gradients (issue 19).
//!
//!     cargo run --release -p acdc-core --example write_floor -- [MB] [reps]
//!
//! Prints, per case, the median time in ms and the rate in GB/s:
//!   fault+zero   `buffer::zeroed` (allocation + pre-faulted zero pages)
//!   fault+write  fresh allocation, every element written once (first touch)
//!   write        every element written again (pages resident: bandwidth)
//!   copy         copy into a second resident buffer (an N-API copy)
//!   add          `dst += src` over resident buffers (read-modify-write)
//!   chunked      calloc'd (not yet faulted) buffer, each 311 KB chunk
//!                pre-faulted (MADV_POPULATE_WRITE) just before it is written
//!   huge+write   as fault+zero+write, with transparent huge pages (MADV_HUGEPAGE)
//!   stream       as write, with non-temporal (streaming) AVX stores
//!   huge+stream  as huge+write, with non-temporal stores
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mb: usize = args.next().map_or(160, |a| a.parse().expect("MB"));
    let reps: usize = args.next().map_or(11, |a| a.parse().expect("reps"));
    let n = mb * 1_000_000 / 8;
    let bytes = (n * 8) as f64;
    let report = |name: &str, times: Vec<f64>| {
        let t = median(times);
        println!("{name:12} {:8.2} ms  {:6.2} GB/s", t * 1e3, bytes / t * 1e-9);
    };
    let (mut fz, mut fw, mut w, mut c, mut a, mut ch, mut hu) = (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    let (mut st, mut hs) = (vec![], vec![]);
    let mut sink = 0.0;
    for rep in 0..reps {
        let t = Instant::now();
        let v = acdc_core::tensor::buffer::zeroed(n, "floor").unwrap();
        fz.push(t.elapsed().as_secs_f64());
        sink += v[n / 2];
        drop(v);

        let t = Instant::now();
        let mut v: Vec<f64> = Vec::with_capacity(n);
        v.extend((0..n).map(|i| i as f64));
        fw.push(t.elapsed().as_secs_f64());

        let t = Instant::now();
        for (i, x) in v.iter_mut().enumerate() {
            *x = (i + rep) as f64;
        }
        w.push(t.elapsed().as_secs_f64());

        let mut d = vec![1.0f64; n];
        let t = Instant::now();
        d.copy_from_slice(&v);
        c.push(t.elapsed().as_secs_f64());

        let t = Instant::now();
        for (x, y) in d.iter_mut().zip(&v) {
            *x += y;
        }
        a.push(t.elapsed().as_secs_f64());
        sink += d[n / 3] + v[n / 5];
        drop(d);
        drop(v);

        let t = Instant::now();
        let mut v = chunked(n, rep);
        ch.push(t.elapsed().as_secs_f64());
        sink += v[n / 7];
        v[0] = 0.0;
        drop(v);

        let t = Instant::now();
        let mut v = huge(n);
        for (i, x) in v.iter_mut().enumerate() {
            *x = (i + rep) as f64;
        }
        hu.push(t.elapsed().as_secs_f64());
        sink += v[n / 9];

        let t = Instant::now();
        stream(&mut v, rep);
        st.push(t.elapsed().as_secs_f64());
        sink += v[n / 11];
        drop(v);

        let t = Instant::now();
        let mut v = huge(n);
        stream(&mut v, rep);
        hs.push(t.elapsed().as_secs_f64());
        sink += v[n / 13];
    }
    println!("{mb} MB, {reps} reps, medians (checksum {sink})");
    report("fault+zero", fz);
    report("fault+write", fw);
    report("write", w);
    report("copy", c);
    report("add", a);
    report("chunked", ch);
    report("huge+write", hu);
    report("stream", st);
    report("huge+stream", hs);
}

/// `v[i] = i + rep` with non-temporal stores where AVX is there.
fn stream(v: &mut [f64], rep: usize) {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx") {
        use std::arch::x86_64::*;
        // SAFETY: any bit pattern is a valid __m256d
        let (head, body, tail) = unsafe { v.align_to_mut::<__m256d>() };
        head.iter_mut().chain(tail.iter_mut()).for_each(|x| *x = rep as f64);
        // SAFETY: AVX checked; aligned 32-byte destinations
        unsafe {
            for (k, x) in body.iter_mut().enumerate() {
                let b = (4 * k + rep) as f64;
                _mm256_stream_pd(x as *mut __m256d as *mut f64, _mm256_set_pd(b + 3.0, b + 2.0, b + 1.0, b));
            }
            _mm_sfence();
        }
        return;
    }
    for (i, x) in v.iter_mut().enumerate() {
        *x = (i + rep) as f64;
    }
}

/// A zeroed allocation in transparent huge pages, faulted in.
fn huge(n: usize) -> Vec<f64> {
    const HUGE: usize = 2 << 20;
    let layout = std::alloc::Layout::array::<f64>(n).unwrap();
    // SAFETY: as in `chunked`
    let v = unsafe {
        let ptr = std::alloc::alloc_zeroed(layout) as *mut f64;
        assert!(!ptr.is_null());
        Vec::from_raw_parts(ptr, n, n)
    };
    let lo = (v.as_ptr() as usize + HUGE - 1) & !(HUGE - 1);
    let hi = (v.as_ptr() as usize + n * 8) & !(HUGE - 1);
    // SAFETY: aligned range inside the allocation; advice only
    unsafe {
        libc::madvise(lo as *mut libc::c_void, hi - lo, libc::MADV_HUGEPAGE);
        libc::madvise(lo as *mut libc::c_void, hi - lo, libc::MADV_POPULATE_WRITE);
    }
    v
}

/// A zeroed allocation faulted in and written chunk by chunk.
fn chunked(n: usize, rep: usize) -> Vec<f64> {
    const CHUNK: usize = 311 * 1024 / 8;
    const PAGE: usize = 4096;
    let layout = std::alloc::Layout::array::<f64>(n).unwrap();
    // SAFETY: non-zero layout, checked pointer, zeroed memory is valid f64
    let mut v = unsafe {
        let ptr = std::alloc::alloc_zeroed(layout) as *mut f64;
        assert!(!ptr.is_null());
        Vec::from_raw_parts(ptr, n, n)
    };
    let lo = (v.as_ptr() as usize + PAGE - 1) & !(PAGE - 1);
    let hi = (v.as_ptr() as usize + n * 8) & !(PAGE - 1);
    for (k, c) in v.chunks_mut(CHUNK).enumerate() {
        let a = ((c.as_ptr() as usize) & !(PAGE - 1)).max(lo);
        let b = ((c.as_ptr() as usize + c.len() * 8 + PAGE - 1) & !(PAGE - 1)).min(hi);
        if b > a {
            // SAFETY: page-aligned range inside the allocation; only faults pages in
            unsafe { libc::madvise(a as *mut libc::c_void, b - a, libc::MADV_POPULATE_WRITE) };
        }
        for (i, x) in c.iter_mut().enumerate() {
            *x = (i + k + rep) as f64;
        }
    }
    v
}
