//! The qemu command line of one VM, built from its record.
//!
//! Every disk sits on its own PCIe root port so volumes can be hot-plugged
//! and unplugged while the guest runs (q35 has no hot-plug on its root bus);
//! port 0 is the local root disk, ports 1.. are volumes. Volumes recorded on
//! the VM are cold-plugged on the same ports at every start, so the device
//! layout of a restarted or resumed VM is the one it had.

use super::record::{VmRecord, VolumeSlot};
use super::{Accel, QemuConfig, VmPaths};
use serde_json::{Value, json};
use stratus_types::agent::VolumeConnection;

/// The `-blockdev` JSON of a volume connection (qemu's own rbd or NBD client).
pub fn volume_blockdev(slot: &VolumeSlot) -> Value {
    match &slot.conn {
        VolumeConnection::Rbd { pool, image, ceph_conf } => json!({
            "driver": "rbd",
            "node-name": slot.node_name(),
            "pool": pool,
            "image": image,
            "conf": ceph_conf,
        }),
        VolumeConnection::Nbd { socket, export, .. } => json!({
            "driver": "nbd",
            "node-name": slot.node_name(),
            "server": {"type": "unix", "path": socket},
            "export": export,
            // Never wait for a vanished export to come back: a fenced
            // export must fail the guest's I/O at once.
            "reconnect-delay": 0,
        }),
    }
}

/// The `device_add` arguments of a volume's virtio disk.
pub fn volume_device(slot: &VolumeSlot) -> Value {
    json!({
        "driver": "virtio-blk-pci",
        "drive": slot.node_name(),
        "id": slot.device_id(),
        "bus": format!("rp{}", slot.port),
        "werror": "report",
        "rerror": "report",
    })
}

fn device_arg(v: &Value) -> String {
    // `-device` takes key=value pairs; every value here is a plain word.
    let Some(map) = v.as_object() else { return String::new() };
    let mut parts = Vec::with_capacity(map.len());
    if let Some(d) = map.get("driver").and_then(Value::as_str) {
        parts.push(d.to_string());
    }
    for (k, val) in map {
        if k == "driver" {
            continue;
        }
        let s = val.as_str().map(str::to_string).unwrap_or_else(|| val.to_string());
        parts.push(format!("{k}={s}"));
    }
    parts.join(",")
}

/// Every argument after the program name.
pub fn args(cfg: &QemuConfig, accel: Accel, paths: &VmPaths, rec: &VmRecord, incoming: bool) -> Vec<String> {
    let mut a: Vec<String> = Vec::new();
    let mut push = |xs: &[&str]| a.extend(xs.iter().map(|s| s.to_string()));
    let name = format!("guest={},debug-threads=off", rec.server_id);
    let uuid = rec.server_id.to_string();
    let accel_arg = match accel {
        Accel::Kvm => "kvm".to_string(),
        Accel::Tcg => format!("tcg,tb-size={}", cfg.tcg_tb_size_mb),
    };
    let mem = rec.ram_mb.max(cfg.min_ram_mb).to_string();
    let smp = rec.vcpus.max(1).to_string();
    push(&["-name", &name, "-uuid", &uuid, "-accel", &accel_arg, "-machine", "q35", "-m", &mem, "-smp", &smp]);
    push(&["-display", "none", "-nodefaults", "-no-user-config"]);
    let serial = format!("file,id=serial0,path={},append=on", paths.console.display());
    push(&["-chardev", &serial, "-serial", "chardev:serial0"]);
    let qmp = format!("unix:{},server=on,wait=off", paths.qmp.display());
    let pidfile = paths.pidfile.display().to_string();
    push(&["-qmp", &qmp, "-pidfile", &pidfile]);
    if let Some(k) = &rec.kernel {
        push(&["-kernel", &k.display().to_string()]);
        if let Some(i) = &rec.initrd {
            push(&["-initrd", &i.display().to_string()]);
        }
        let mut append = rec.kernel_args.clone().unwrap_or_else(|| "console=ttyS0".into());
        append.push_str(&format!(" guest.tag={}", rec.server_id.to_string().split('-').next().unwrap_or("vm")));
        push(&["-append", &append]);
    }
    for port in 0..=cfg.volume_ports {
        let dev = format!("pcie-root-port,id=rp{port},bus=pcie.0,chassis={},slot={}", port + 1, port + 1);
        push(&["-device", &dev]);
    }
    if let Some(root) = &rec.root_disk {
        let file = json!({"driver": "file", "node-name": "root-file", "filename": root});
        let fmt = json!({"driver": "raw", "node-name": "root", "file": "root-file"});
        push(&["-blockdev", &file.to_string(), "-blockdev", &fmt.to_string()]);
        // Firmware boots the root disk first, unless a kernel is loaded
        // directly (that path already holds boot index 0).
        let boot = if rec.kernel.is_none() { ",bootindex=0" } else { "" };
        let dev = format!("virtio-blk-pci,drive=root,id=root-disk,bus=rp0{boot},werror=report,rerror=report");
        push(&["-device", &dev]);
    }
    for slot in &rec.volumes {
        push(&["-blockdev", &volume_blockdev(slot).to_string(), "-device", &device_arg(&volume_device(slot))]);
    }
    if incoming {
        let from = format!("exec:cat {}", paths.managed_save.display());
        push(&["-incoming", &from]);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_args_are_key_value_pairs_led_by_the_driver() {
        let v = json!({"driver": "virtio-blk-pci", "drive": "vol-p1", "bus": "rp1"});
        assert_eq!(device_arg(&v), "virtio-blk-pci,bus=rp1,drive=vol-p1");
    }
}
