//! Generates the gRPC code with protox (pure Rust), so no system `protoc` is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = ["proto/nacos_grpc_service.proto", "proto/cairn_cluster.proto"];
    for f in files {
        println!("cargo:rerun-if-changed={f}");
    }
    // The Nacos client services use small codec buffers (many long-lived connections);
    // Cairn's cluster protocol keeps tonic's defaults (large Raft messages).
    let nacos = protox::compile([files[0]], ["proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .codec_path("crate::codec::SmallCodec")
        .compile_fds(nacos)?;
    let cluster = protox::compile([files[1]], ["proto"])?;
    tonic_prost_build::configure().build_client(true).build_server(true).compile_fds(cluster)?;
    Ok(())
}
