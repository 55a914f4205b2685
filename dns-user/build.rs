//! Builds the XDP program (crate dns-ebpf) for the BPF target with the nightly toolchain
//! and bpf-linker, so that `instadns` embeds it. `cargo xtask setup` installs both.
use anyhow::{Context as _, anyhow};
use aya_build::Toolchain;

fn main() -> anyhow::Result<()> {
    let cargo_metadata::Metadata { packages, .. } =
        cargo_metadata::MetadataCommand::new().no_deps().exec().context("reading the workspace metadata")?;
    let ebpf = packages
        .iter()
        .find(|p| p.name.as_str() == "dns-ebpf")
        .ok_or_else(|| anyhow!("the dns-ebpf package is missing from the workspace"))?;
    let root_dir = ebpf
        .manifest_path
        .parent()
        .ok_or_else(|| anyhow!("{} has no parent directory", ebpf.manifest_path))?;
    aya_build::build_ebpf(
        [aya_build::Package { name: ebpf.name.as_str(), root_dir: root_dir.as_str(), ..Default::default() }],
        Toolchain::default(),
    )
    .context("building the eBPF program (needs bpf-linker and nightly rust-src: run `cargo xtask setup`)")
}
