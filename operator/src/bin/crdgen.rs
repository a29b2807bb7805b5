//! Writes the RegistryCluster CRD to `crds/registryclusters.cairn.dev.yaml` (relative to the
//! workspace root), or to stdout with `-`.

use std::path::PathBuf;

fn main() -> std::process::ExitCode {
    let yaml = match cairn_operator::crd::crd_yaml() {
        Ok(y) => y,
        Err(e) => {
            eprintln!("crdgen: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    if std::env::args().nth(1).as_deref() == Some("-") {
        print!("{yaml}");
        return std::process::ExitCode::SUCCESS;
    }
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(cairn_operator::crd::CRD_FILE);
    match std::fs::write(&path, yaml) {
        Ok(()) => {
            println!("wrote {}", path.display());
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("crdgen: write {}: {e}", path.display());
            std::process::ExitCode::FAILURE
        }
    }
}
