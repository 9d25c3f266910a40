//! Criterion benchmarks of the zoo: a forward pass (`infer/…`) and a training step (`train/…`)
//! of LeNet-5, CIFAR ResNet-20, ResNet-18, ResNet-50, VGG-16 and GoogLeNet on every backend
//! compiled in, with throughput in images/s (criterion's "elem/s"). The cases are
//! `benches::models::criterion_suite`; each step ends with `Device::sync`.
//!
//! `cargo bench -p benches` runs them all; a filter picks some (`cargo bench -p benches --
//! train/cifar-resnet20`, or `-- /flex`), and `ZOO_BENCH_BACKENDS=flex,ndarray` limits the
//! backends (wgpu without a GPU runs on a software rasteriser). `cargo xtask bench models`
//! measures the same workloads outside criterion, beside PyTorch.

use std::time::{Duration, Instant};

use benches::models::{Mode, Precision, Workload, criterion_suite};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use trainer::BackendKind;

/// The backends named in `ZOO_BENCH_BACKENDS`, or every one compiled in.
fn backends() -> Vec<BackendKind> {
    let Ok(list) = std::env::var("ZOO_BENCH_BACKENDS") else {
        return BackendKind::ALL.to_vec();
    };
    list.split(',')
        .map(|name| {
            name.trim().parse().unwrap_or_else(|error| {
                eprintln!("ZOO_BENCH_BACKENDS: {error}");
                std::process::exit(2)
            })
        })
        .collect()
}

fn zoo(c: &mut Criterion) {
    // As `cargo xtask` does, so both measure the same process settings.
    trainer::allocator::retain_freed_memory();
    for mode in [Mode::Infer, Mode::Train] {
        let mut group = c.benchmark_group(mode.name());
        // A ResNet-50 training step takes seconds on a CPU: ten samples, short warm-up.
        group
            .sample_size(10)
            .warm_up_time(Duration::from_secs(2))
            .measurement_time(Duration::from_secs(10));
        for backend in backends() {
            for case in criterion_suite(backend) {
                group.throughput(Throughput::Elements(case.batch as u64));
                let id = format!("{}-b{}-{}/{backend}", case.model, case.batch, case.input[1]);
                // Built on criterion's first call, so cases a filter leaves out are never built.
                let mut workload = None;
                group.bench_function(&id, |bencher| {
                    let workload = workload.get_or_insert_with(|| {
                        Workload::new(&case, backend, mode, Precision::Fp32)
                            .unwrap_or_else(|error| panic!("{id}: {error}"))
                    });
                    bencher.iter_custom(|iterations| {
                        let started = Instant::now();
                        for _ in 0..iterations {
                            workload
                                .step()
                                .unwrap_or_else(|error| panic!("{id}: {error}"));
                        }
                        started.elapsed()
                    });
                });
            }
        }
        group.finish();
    }
}

criterion_group!(benches, zoo);
criterion_main!(benches);
