//! Generates the gRPC code from `proto/mapreduce.proto` without a system
//! `protoc`: `protox` parses the file into descriptors in pure Rust and
//! `tonic-prost-build` generates the messages, client and server from them.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/mapreduce.proto");
    let descriptors = protox::compile(["mapreduce.proto"], ["proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // Maps (job parameters) as BTreeMaps: ordered, as core's `Params`.
        .btree_map(".")
        // A fetched segment's bytes pass from the file to the wire uncopied.
        .bytes(".gridmr.FetchChunk.data")
        .compile_fds(descriptors)?;
    Ok(())
}
