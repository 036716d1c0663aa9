//! Synthetic per-record cost: CPU work measured on the thread's own CPU clock.

use rheo_engine::metrics::own_thread_cpu_ns;

/// Spins until this thread has consumed `ns` of CPU time.
///
/// The deadline is on the thread's CPU clock, not the wall clock: a thread descheduled on an
/// oversubscribed machine keeps owing its work, so extra threads cannot make a CPU-bound stage
/// look faster than the cores allow.
pub fn burn_cpu(ns: u64) {
    if ns == 0 {
        return;
    }
    let start = own_thread_cpu_ns();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    loop {
        // A few hundred ns of arithmetic between clock reads (each read is a system call).
        for _ in 0..64 {
            x = x.rotate_left(5).wrapping_mul(0x2545_f491_4f6c_dd1d);
        }
        std::hint::black_box(x);
        if own_thread_cpu_ns().saturating_sub(start) >= ns {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_threads_on_two_cores_each_get_their_cpu_time() {
        // 4 threads × 100 ms of CPU on a 2-core machine: each must consume 100 ms ± 10 % of its
        // own CPU, however long the wall clock takes.
        let handles: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(|| {
                    let start = own_thread_cpu_ns();
                    for _ in 0..20 {
                        burn_cpu(5_000_000);
                    }
                    own_thread_cpu_ns() - start
                })
            })
            .collect();
        for h in handles {
            let used = h.join().unwrap();
            let ratio = used as f64 / 100_000_000.0;
            assert!(
                (1.0..1.1).contains(&ratio),
                "consumed {used} ns for 100 ms requested"
            );
        }
    }
}
