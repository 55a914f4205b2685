//! SIGHUP: re-reads the configuration file (the flags still override it), imports its
//! zone files, reloads the zones, and attaches or detaches interfaces added to or removed
//! from it. Settings that need a restart are reported.

use anyhow::{Result, anyhow};
use instadns::{engine::Handler, fastpath::pin, store::Database};

use super::{
    attach::attach_iface,
    config::Config,
    flags::{ServeArgs, serve_config},
    import_zone_files,
    status::DaemonStatus,
};

pub async fn reload(
    config: &mut Config,
    args: &ServeArgs,
    db: &Database,
    handler: &Handler<Database>,
    ebpf: Option<&mut aya::Ebpf>,
    status: &DaemonStatus,
) -> Result<()> {
    let fresh = serve_config(args)?;
    import_zone_files(db, &fresh).await?;
    handler.resolver().reload().await?;
    if let Some(catalog) = handler.resolver().catalog() {
        handler.cache().set_territories(catalog.territories.prefixes());
    }
    if let Some(ebpf) = ebpf {
        let mut attached = Vec::new();
        for iface in &fresh.interfaces {
            match config.interfaces.iter().find(|c| c.name == iface.name) {
                Some(current) if current.xdp_mode == iface.xdp_mode => {}
                _ => attached.push(attach_iface(ebpf, &config.pin_dir, iface)?),
            }
        }
        let mut list = status.attached.lock().map_err(|_| anyhow!("attachment list poisoned"))?;
        for iface in config.interfaces.iter().filter(|c| !fresh.interfaces.iter().any(|i| i.name == c.name)) {
            pin::detach_iface(&config.pin_dir, &iface.name)?;
            tracing::info!(iface = iface.name, "XDP fast path detached on reload");
            list.retain(|a| a.iface != iface.name);
        }
        for a in attached {
            list.retain(|l| l.iface != a.iface);
            list.push(a);
        }
        config.interfaces = fresh.interfaces.clone();
        super::attach::mark_ours(handler.cache(), &config.interfaces, &config.listen);
    }
    if fresh.listen != config.listen
        || fresh.port != config.port
        || fresh.db != config.db
        || fresh.maps != config.maps
        || fresh.pin_dir != config.pin_dir
    {
        tracing::warn!("listen, port, db, maps and pin_dir changes take effect at the next restart");
    }
    config.zone_files = fresh.zone_files;
    config.detach_on_exit = fresh.detach_on_exit;
    Ok(())
}
