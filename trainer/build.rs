#[path = "llvm_stubs/llvm_stubs.rs"]
mod llvm_stubs;

fn main() {
    // `cuda` builds made with DOCS_RS=1 link abort() stubs for LLVM (llvm_stubs/README.md).
    llvm_stubs::link_llvm_stubs("llvm_stubs/symbols.txt", Some("cuda"));
}
