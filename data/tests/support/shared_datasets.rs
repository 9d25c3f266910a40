//! Where the real datasets are, `../shared/datasets` beside the repository, and the CIFAR-10
//! JPEG tarball extracted once from there. Shared by data's and trainer's tests of them.

use std::path::PathBuf;
use std::sync::OnceLock;

/// Read at run time, not baked in by `env!`: a test binary reused from a shared target folder
/// must look beside the checkout it runs in.
pub fn shared() -> PathBuf {
    PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR"),
    )
    .join("../../shared/datasets")
}

/// The CIFAR-10 JPEG tarball, extracted once into the target folder (shared by the workspace's
/// test binaries) and reused by later runs: the folder holding `train/` and `test/`.
pub fn cifar_folder() -> &'static PathBuf {
    static FOLDER: OnceLock<PathBuf> = OnceLock::new();
    FOLDER.get_or_init(|| {
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cifar10-jpeg");
        if !out.join(".complete").is_file() {
            let partial = out.with_extension(format!("partial-{}", std::process::id()));
            data::datasets::fetch::unpack(&shared().join("cifar10-jpeg.tar.gz"), &partial).unwrap();
            std::fs::write(partial.join(".complete"), b"").unwrap();
            let _ = std::fs::remove_dir_all(&out);
            std::fs::rename(&partial, &out).unwrap();
        }
        out.join("cifar10")
    })
}
