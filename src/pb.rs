//! The generated gRPC code of `proto/safeguard/v1`, and the file descriptor set for reflection.

#![allow(missing_docs, clippy::all, clippy::pedantic)]

/// `safeguard.v1`: the public contract.
pub mod v1 {
    tonic::include_proto!("safeguard.v1");
}

/// The encoded descriptors of every safeguard proto file, served by gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("safeguard_descriptor");
