//! What this machine's cores give together, apart from any job: the yardstick for scaling figures.
//!
//! Two kernels, each run on one thread and then on N threads at once (each thread its own
//! buffers), in turns for several rounds: work that stays in a core's own cache, and a copy of
//! buffers far larger than the shared cache, which N cores must share memory bandwidth for.
//! A job's N-process speedup can be no better than what its mix of the two allows; on the 2-vCPU
//! VM where the benchmarks ran, the first gave ~2.0x and the second ~1.6x.
//!
//! `cargo run --release --example cores -- [--threads N] [--rounds R]` prints one JSON object.

use std::hint::black_box;
use std::time::Instant;

/// Bytes each thread works on for the in-cache kernel: well inside a core's own L2.
const IN_CACHE_BYTES: usize = 128 << 10;
/// Bytes of each of a thread's two buffers for the memory kernel: far beyond a shared L3.
const MEMORY_BYTES: usize = 64 << 20;

/// Arithmetic over a buffer that stays in cache: passes of a multiply-xor mix over its words.
fn in_cache(passes: usize) -> u64 {
    let mut words: Vec<u64> = (0..IN_CACHE_BYTES as u64 / 8).collect();
    let mut mix = 0x9E37_79B9_7F4A_7C15u64;
    for _ in 0..passes {
        for word in words.iter_mut() {
            mix = (mix ^ *word).wrapping_mul(0x1000_0000_01B3);
            *word = word.wrapping_add(mix >> 7);
        }
        black_box(&mut words);
    }
    mix
}

/// Copies between two buffers far larger than the cache, and reads one back: memory-bound.
fn memory(passes: usize) -> u64 {
    let source = vec![1u8; MEMORY_BYTES];
    let mut target = vec![2u8; MEMORY_BYTES];
    let mut sum = 0u64;
    for pass in 0..passes {
        target.copy_from_slice(black_box(&source));
        sum += target.iter().step_by(64).map(|&b| b as u64).sum::<u64>() + pass as u64;
        black_box(&mut target);
    }
    sum
}

/// Seconds for `threads` threads to each run `kernel` once, all started together.
fn timed(threads: usize, kernel: fn(usize) -> u64, passes: usize) -> f64 {
    let started = Instant::now();
    std::thread::scope(|scope| {
        let runs: Vec<_> = (0..threads).map(|_| scope.spawn(move || kernel(passes))).collect();
        for run in runs {
            black_box(run.join().expect("kernel thread"));
        }
    });
    started.elapsed().as_secs_f64()
}

/// A kernel's name, its code (given a number of passes) and the passes one run makes.
type Kernel = (&'static str, fn(usize) -> u64, usize);

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut threads, mut rounds) = (std::thread::available_parallelism().map_or(2, |n| n.get()), 5);
    while let Some(flag) = args.next() {
        let value = args.next().and_then(|v| v.parse().ok()).expect("a number after each flag");
        match flag.as_str() {
            "--threads" => threads = value,
            "--rounds" => rounds = value,
            _ => panic!("unknown flag {flag}: expected --threads N or --rounds R"),
        }
    }
    let kernels: [Kernel; 2] = [("in_cache", in_cache, 25_000), ("memory", memory, 24)];
    let mut report = Vec::new();
    for (name, kernel, passes) in kernels {
        let (mut alone, mut together) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            alone.push(timed(1, kernel, passes));
            together.push(timed(threads, kernel, passes));
        }
        // Throughput of N threads over one, round by round: N times as much work in the time taken.
        let paired = alone.iter().zip(&together).map(|(a, t)| threads as f64 * a / t).collect();
        let round3 = |v: &[f64]| v.iter().map(|x| format!("{x:.3}")).collect::<Vec<_>>().join(", ");
        report.push(format!(
            "\"{name}\": {{\"speedup\": {:.2}, \"alone_seconds\": [{}], \"together_seconds\": [{}]}}",
            median(paired),
            round3(&alone),
            round3(&together)
        ));
    }
    println!("{{\"threads\": {threads}, {}}}", report.join(", "));
}
