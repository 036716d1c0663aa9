//! What the benchmarks share: a criterion measurement of process CPU time.

use criterion::Throughput;
use criterion::measurement::{Measurement, ValueFormatter};
use rheo::engine::metrics::process_cpu_ns;

/// Process CPU time (all threads), so throughput reads as records per CPU-second.
pub struct ProcessCpu;

struct CpuFormatter;

impl ValueFormatter for CpuFormatter {
    fn scale_values(&self, typical: f64, values: &mut [f64]) -> &'static str {
        let (factor, unit) = if typical < 1e3 {
            (1.0, "ns")
        } else if typical < 1e6 {
            (1e-3, "µs")
        } else if typical < 1e9 {
            (1e-6, "ms")
        } else {
            (1e-9, "s")
        };
        values.iter_mut().for_each(|v| *v *= factor);
        unit
    }

    fn scale_throughputs(
        &self,
        typical: f64,
        throughput: &Throughput,
        values: &mut [f64],
    ) -> &'static str {
        let per = match throughput {
            Throughput::Elements(n) | Throughput::Bytes(n) | Throughput::BytesDecimal(n) => {
                *n as f64
            }
        };
        // values are CPU ns per iteration; report elements per CPU-second.
        let rate = |ns: f64| per * 1e9 / ns;
        let typical_rate = rate(typical);
        let (factor, unit) = if typical_rate >= 1e6 {
            (1e-6, "M elem/cpu-s")
        } else if typical_rate >= 1e3 {
            (1e-3, "K elem/cpu-s")
        } else {
            (1.0, "elem/cpu-s")
        };
        values.iter_mut().for_each(|v| *v = rate(*v) * factor);
        unit
    }

    fn scale_for_machines(&self, _: &mut [f64]) -> &'static str {
        "ns"
    }
}

impl Measurement for ProcessCpu {
    type Intermediate = u64;
    type Value = u64;

    fn start(&self) -> u64 {
        process_cpu_ns()
    }
    fn end(&self, start: u64) -> u64 {
        process_cpu_ns().saturating_sub(start)
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, v: &u64) -> f64 {
        *v as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &CpuFormatter
    }
}
