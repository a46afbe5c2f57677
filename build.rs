//! Generates the gRPC code of `proto/safeguard/v1` into OUT_DIR, and the file descriptor set that
//! server reflection serves. protoc comes from `protoc-bin-vendored` unless `PROTOC` names one, so a
//! fresh machine needs no protoc install.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    println!("cargo:rerun-if-env-changed=PROTOC");
    // Several checkouts (git worktrees) may share one target directory, where they share this
    // script's output too; a change of the directory cargo runs in regenerates it, so a checkout
    // never compiles against another's protos.
    println!("cargo:rerun-if-env-changed=PWD");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);

    let mut config = tonic_prost_build::Config::new();
    let protoc = match std::env::var_os("PROTOC") {
        Some(path) => PathBuf::from(path),
        None => protoc_bin_vendored::protoc_bin_path()?,
    };
    config.protoc_executable(protoc);

    let protos = [
        "proto/safeguard/v1/types.proto",
        "proto/safeguard/v1/verification.proto",
        "proto/safeguard/v1/registry.proto",
        "proto/safeguard/v1/audit.proto",
    ];
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("safeguard_descriptor.bin"))
        .compile_with_config(config, &protos, &["proto"])?;
    Ok(())
}
