//! `cairn-loadgen`: a load generator for Nacos-compatible registries that speaks the Nacos gRPC
//! protocol as a real SDK does (one HTTP/2 connection per client, bi-stream setup, pushes
//! acknowledged on the stream). It measures register throughput, query throughput, push latency
//! and server memory, against one server (`cairn-loadgen --server …`) or cairn-node and r-nacos
//! side by side (`cairn-loadgen compare …`). See README.md.

mod bench;
mod compare;
mod config;
mod conn;
mod join;
mod procfs;
mod report;

use clap::{Args, Parser, Subcommand};

use crate::bench::{Target, Workload};

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(name = "cairn-loadgen", version, about, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run the workload against one server (the default).
    Run(RunArgs),
    /// Start cairn-node and r-nacos in turn and compare them.
    Compare(compare::CompareArgs),
}

#[derive(Args, Debug, Clone)]
struct RunArgs {
    /// The server's HTTP address `host:port`; the client gRPC port is port+1000.
    #[arg(long, default_value = "127.0.0.1:8848")]
    server: String,
    /// Client gRPC port (default: HTTP port + 1000).
    #[arg(long)]
    grpc_port: Option<u16>,
    /// Server pid: RSS and CPU are read from /proc/<pid>.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Further servers `host:httpPort,...` (gRPC = HTTP + the same offset as --server): the
    /// config-publish phase spreads its connections over --server and these (3-node cluster).
    #[arg(long, value_delimiter = ',')]
    extra_servers: Vec<String>,
    /// Label used in the report.
    #[arg(long, default_value = "server")]
    label: String,
    #[command(flatten)]
    workload: Workload,
}

fn threads(w: &Workload) -> usize {
    w.threads.max(1)
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let cmd = cli.cmd.unwrap_or(Cmd::Run(cli.run));
    let w = match &cmd {
        Cmd::Run(r) => &r.workload,
        Cmd::Compare(c) => &c.workload,
    };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(threads(w)).enable_all().build()?;
    rt.block_on(async move {
        match cmd {
            Cmd::Run(r) => run(r).await,
            Cmd::Compare(c) => compare::compare(&c).await,
        }
    })
}

async fn run(r: RunArgs) -> anyhow::Result<()> {
    let (host, port) = r
        .server
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h.trim_matches(['[', ']']).to_owned(), p.parse::<u16>().ok()?)))
        .ok_or_else(|| anyhow::anyhow!("--server must be host:port, got {:?}", r.server))?;
    let grpc_port = match r.grpc_port {
        Some(p) => p,
        None => port
            .checked_add(1000)
            .ok_or_else(|| anyhow::anyhow!("HTTP port {port} + 1000 overflows; pass --grpc-port"))?,
    };
    let mut extra = Vec::new();
    for e in &r.extra_servers {
        let (h, p) = e
            .rsplit_once(':')
            .and_then(|(h, p)| Some((h.trim_matches(['[', ']']).to_owned(), p.parse::<u16>().ok()?)))
            .ok_or_else(|| anyhow::anyhow!("--extra-servers entries must be host:port, got {e:?}"))?;
        let g = i32::from(p) + i32::from(grpc_port) - i32::from(port);
        let g = u16::try_from(g).map_err(|_| anyhow::anyhow!("gRPC port of {e} out of range"))?;
        extra.push((h, g));
    }
    let t = Target { label: r.label.clone(), host, http_port: port, grpc_port, pid: r.server_pid, extra };
    eprintln!("target {}:{} (gRPC {}), server pid {:?}, extra {:?}", t.host, t.http_port, t.grpc_port, t.pid, t.extra);
    let res = bench::run(&t, &r.workload).await?;
    report::print_run(&res);
    let json = serde_json::json!({ "mode": "run", "result": res });
    println!("{json}");
    Ok(())
}
