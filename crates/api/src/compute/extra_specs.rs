//! Flavor extra spec validation (microversion 2.86): from 2.86 Nova checks
//! every extra spec set through `os-extra_specs` against its registry of the
//! specs it knows. A key it registers must carry a value of the registered
//! kind; a key in one of its namespaces that it does not register is refused;
//! keys in other namespaces, and keys without one, are taken as they are.
//!
//! The registry below is Stratus's own table of those facts (key names, value
//! kinds, allowed words, bounds and formats), as Nova 2026.1 knows them, with
//! the standard resource classes of `os-resource-classes` 1.1 and the standard
//! traits of `os-traits` 3.9. Messages are Nova's, so clients see the same 400.

use super::RequestError;
use regex::Regex;
use std::sync::LazyLock;

/// What the value of a known extra spec must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rule {
    /// Any text: Nova registers the key but not its values.
    Any,
    /// A boolean word (`true`/`false`, `yes`/`no`, `on`/`off`, `t`/`f`,
    /// `y`/`n`, `1`/`0`), in any case, blanks around it ignored.
    Bool,
    /// An integer as Python's `int()` reads text, within the bounds.
    Int { min: Option<i64>, max: Option<i64> },
    /// Exactly one of these words.
    OneOf(&'static [&'static str]),
    /// Text matching this regular expression as a whole.
    Format(&'static str),
}

/// Any integer.
const INT: Rule = Rule::Int { min: None, max: None };
/// A non-negative integer.
const NATURAL: Rule = Rule::Int { min: Some(0), max: None };
/// A positive integer.
const POSITIVE: Rule = Rule::Int { min: Some(1), max: None };
/// A CPU set such as `0-3,^2` (the realtime, dedicated and NUMA CPU masks).
const CPU_MASK: Rule = Rule::Format(r"\^?\d+((-\d+)?(,\^?\d+(-\d+)?)?)*");
/// The VMware quota share levels.
const SHARE_LEVELS: Rule = Rule::OneOf(&["custom", "high", "normal", "low"]);

/// The keys Nova registers by their full name, with their value rule.
const FIXED: &[(&str, Rule)] = &[
    // accel
    ("accel:device_profile", Rule::Any),
    // hw: realtime, CPU policies, memory, NUMA, topology, features, encryption
    ("hw:cpu_realtime", Rule::Bool),
    ("hw:cpu_realtime_mask", Rule::Format(r"(\^)?\d+((-\d+)?(,\^?\d+(-\d+)?)?)*")),
    ("hw:hide_hypervisor_id", Rule::Bool),
    ("hw:cpu_policy", Rule::OneOf(&["dedicated", "shared", "mixed"])),
    ("hw:cpu_thread_policy", Rule::OneOf(&["prefer", "isolate", "require"])),
    ("hw:emulator_threads_policy", Rule::OneOf(&["isolate", "share"])),
    ("hw:cpu_dedicated_mask", CPU_MASK),
    ("hw:mem_page_size", Rule::Format(r"(large|small|any|\d+([kKMGT]i?)?(b|bit|B)?)")),
    ("hw:locked_memory", Rule::Bool),
    ("hw:numa_nodes", POSITIVE),
    ("hw:pci_numa_affinity_policy", Rule::OneOf(&["required", "preferred", "legacy", "socket"])),
    ("hw:cpu_sockets", POSITIVE),
    ("hw:cpu_cores", POSITIVE),
    ("hw:cpu_threads", POSITIVE),
    ("hw:cpu_max_sockets", POSITIVE),
    ("hw:cpu_max_cores", POSITIVE),
    ("hw:cpu_max_threads", POSITIVE),
    ("hw:boot_menu", Rule::Bool),
    ("hw:vif_multiqueue_enabled", Rule::Bool),
    ("hw:mem_encryption", Rule::Bool),
    ("hw:mem_encryption_model", Rule::OneOf(&["amd-sev", "amd-sev-es", "amd-sev-snp"])),
    ("hw:pmem", Rule::Format("([a-zA-Z0-9_]+(,)?)+")),
    ("hw:pmu", Rule::Bool),
    ("hw:serial_port_count", NATURAL),
    ("hw:tpm_model", Rule::OneOf(&["tpm-tis", "tpm-crb"])),
    ("hw:tpm_version", Rule::OneOf(&["1.2", "2.0"])),
    ("hw:tpm_secret_security", Rule::OneOf(&["user", "host", "deployment"])),
    ("hw:watchdog_action", Rule::OneOf(&["none", "pause", "poweroff", "reset", "disabled"])),
    ("hw:viommu_model", Rule::OneOf(&["intel", "smmuv3", "virtio", "auto"])),
    ("hw:virtio_packed_ring", Rule::Bool),
    ("hw:sound_model", Rule::OneOf(&["sb16", "es1370", "pcspk", "ac97", "ich6", "ich9", "usb", "virtio"])),
    ("hw:usb_model", Rule::OneOf(&["none", "nec-xhci", "qemu-xhci"])),
    ("hw:redirected_usb_ports", Rule::Int { min: Some(0), max: Some(15) }),
    ("hw:ephemeral_encryption", Rule::Bool),
    ("hw:ephemeral_encryption_format", Rule::OneOf(&["plain", "luks", "luksv2"])),
    // hw_rng, hw_video
    ("hw_rng:allowed", Rule::Bool),
    ("hw_rng:rate_bytes", NATURAL),
    ("hw_rng:rate_period", NATURAL),
    ("hw_video:ram_max_mb", NATURAL),
    // Without a namespace: only these two are known.
    ("hide_hypervisor_id", Rule::Bool),
    ("group_policy", Rule::OneOf(&["isolate", "none"])),
    // os
    ("os:secure_boot", Rule::OneOf(&["disabled", "required"])),
    // pci_passthrough: one or more comma-separated `alias:count`
    ("pci_passthrough:alias", Rule::Format(r"[^:]+:\d+(?:\s*,\s*[^:]+:\d+)*")),
    // quota: the VMware limits, reservations and shares of CPU, memory, disk IO and VIFs
    ("quota:cpu_limit", NATURAL),
    ("quota:cpu_reservation", INT),
    ("quota:cpu_shares_level", SHARE_LEVELS),
    ("quota:cpu_shares_share", NATURAL),
    ("quota:memory_limit", NATURAL),
    ("quota:memory_reservation", INT),
    ("quota:memory_shares_level", SHARE_LEVELS),
    ("quota:memory_shares_share", NATURAL),
    ("quota:disk_io_limit", NATURAL),
    ("quota:disk_io_reservation", INT),
    ("quota:disk_io_shares_level", SHARE_LEVELS),
    ("quota:disk_io_shares_share", NATURAL),
    ("quota:vif_limit", NATURAL),
    ("quota:vif_reservation", INT),
    ("quota:vif_shares_level", SHARE_LEVELS),
    ("quota:vif_shares_share", NATURAL),
    // quota: the libvirt CPU, disk and VIF tunings
    ("quota:cpu_shares", NATURAL),
    ("quota:cpu_period", NATURAL),
    ("quota:cpu_quota", INT),
    ("quota:disk_read_bytes_sec", NATURAL),
    ("quota:disk_read_iops_sec", NATURAL),
    ("quota:disk_write_bytes_sec", NATURAL),
    ("quota:disk_write_iops_sec", NATURAL),
    ("quota:disk_total_bytes_sec", NATURAL),
    ("quota:disk_total_iops_sec", NATURAL),
    ("quota:vif_inbound_average", NATURAL),
    ("quota:vif_inbound_peak", NATURAL),
    ("quota:vif_inbound_burst", NATURAL),
    ("quota:vif_outbound_average", NATURAL),
    ("quota:vif_outbound_peak", NATURAL),
    ("quota:vif_outbound_burst", NATURAL),
    // vmware
    ("vmware:hw_version", Rule::Any),
    ("vmware:storage_policy", Rule::Any),
];

/// The host capabilities the `ComputeCapabilitiesFilter` reads, known as
/// `capabilities:<name>` (any value: the filter's operators are free text).
const CAPABILITIES: &[&str] = &[
    "id",
    "uuid",
    "service_id",
    "host",
    "vcpus",
    "memory_mb",
    "local_gb",
    "vcpus_used",
    "memory_mb_used",
    "local_gb_used",
    "hypervisor_type",
    "hypervisor_version",
    "hypervisor_hostname",
    "free_ram_mb",
    "free_disk_gb",
    "current_workload",
    "running_vms",
    "disk_available_least",
    "host_ip",
    "mapped",
    "cpu_allocation_ratio",
    "ram_allocation_ratio",
    "disk_allocation_ratio",
    "total_usable_ram_mb",
    "total_usable_disk_gb",
    "disk_mb_used",
    "free_disk_mb",
    "vcpus_total",
    "num_instances",
    "num_io_ops",
    "failed_builds",
    "aggregates",
    "cell_uuid",
    "updated",
];

/// The keys Nova registers by a pattern (matched against the whole key),
/// with their value rule. The NUMA keys' dot is a regex wildcard, as in Nova.
const PATTERNED: &[(&str, Rule)] = &[
    (r"hw:numa_cpus.[0-9]+", CPU_MASK),
    (r"hw:numa_mem.[0-9]+", POSITIVE),
    (r"aggregate_instance_extra_specs:.+", Rule::Any),
    (
        r"capabilities:(cpu_info|metrics|stats|numa_topology|supported_hv_specs|pci_device_pools|nodename|pci_stats|supported_instances|limits|instances)(:[0-9A-Za-z_]+)*",
        Rule::Any,
    ),
];

/// The namespaces Nova knows: a key in one of them must be registered.
const NAMESPACES: &[&str] = &[
    "accel",
    "aggregate_instance_extra_specs",
    "capabilities",
    "hw",
    "hw_rng",
    "hw_video",
    "os",
    "pci_passthrough",
    "quota",
    "vmware",
];

/// The request-group suffix Nova allows on `resources` and `trait`
/// (`resources1:VCPU`, `trait_net:HW_NIC_SRIOV`).
const GROUP: &str = "[a-zA-Z0-9_-]{1,64}";

/// Placement's standard resource classes (`resources[group]:<class>`, an integer).
const RESOURCE_CLASSES: &[&str] = &[
    "VCPU",
    "MEMORY_MB",
    "DISK_GB",
    "PCI_DEVICE",
    "SRIOV_NET_VF",
    "NUMA_SOCKET",
    "NUMA_CORE",
    "NUMA_THREAD",
    "NUMA_MEMORY_MB",
    "IPV4_ADDRESS",
    "VGPU",
    "VGPU_DISPLAY_HEAD",
    "NET_BW_EGR_KILOBIT_PER_SEC",
    "NET_BW_IGR_KILOBIT_PER_SEC",
    "PCPU",
    "MEM_ENCRYPTION_CONTEXT",
    "FPGA",
    "PGPU",
    "NET_PACKET_RATE_KILOPACKET_PER_SEC",
    "NET_PACKET_RATE_EGR_KILOPACKET_PER_SEC",
    "NET_PACKET_RATE_IGR_KILOPACKET_PER_SEC",
];

/// Placement's standard traits (`trait[group]:<trait>`: `required` or `forbidden`).
const TRAITS: &[&str] = &[
    "COMPUTE_ACCELERATORS",
    "COMPUTE_ADDRESS_SPACE_EMULATED",
    "COMPUTE_ADDRESS_SPACE_PASSTHROUGH",
    "COMPUTE_ARCH_AARCH64",
    "COMPUTE_ARCH_MIPSEL",
    "COMPUTE_ARCH_PPC64LE",
    "COMPUTE_ARCH_RISCV64",
    "COMPUTE_ARCH_S390X",
    "COMPUTE_ARCH_X86_64",
    "COMPUTE_CONFIG_DRIVE_REGENERATION",
    "COMPUTE_DEVICE_TAGGING",
    "COMPUTE_EPHEMERAL_ENCRYPTION",
    "COMPUTE_EPHEMERAL_ENCRYPTION_LUKS",
    "COMPUTE_EPHEMERAL_ENCRYPTION_LUKSV2",
    "COMPUTE_EPHEMERAL_ENCRYPTION_PLAIN",
    "COMPUTE_FIRMWARE_BIOS",
    "COMPUTE_FIRMWARE_UEFI",
    "COMPUTE_GRAPHICS_MODEL_BOCHS",
    "COMPUTE_GRAPHICS_MODEL_CIRRUS",
    "COMPUTE_GRAPHICS_MODEL_GOP",
    "COMPUTE_GRAPHICS_MODEL_NONE",
    "COMPUTE_GRAPHICS_MODEL_QXL",
    "COMPUTE_GRAPHICS_MODEL_VGA",
    "COMPUTE_GRAPHICS_MODEL_VIRTIO",
    "COMPUTE_GRAPHICS_MODEL_VMVGA",
    "COMPUTE_GRAPHICS_MODEL_XEN",
    "COMPUTE_IMAGE_TYPE_AKI",
    "COMPUTE_IMAGE_TYPE_AMI",
    "COMPUTE_IMAGE_TYPE_ARI",
    "COMPUTE_IMAGE_TYPE_ISO",
    "COMPUTE_IMAGE_TYPE_PLOOP",
    "COMPUTE_IMAGE_TYPE_QCOW2",
    "COMPUTE_IMAGE_TYPE_RAW",
    "COMPUTE_IMAGE_TYPE_VDI",
    "COMPUTE_IMAGE_TYPE_VHD",
    "COMPUTE_IMAGE_TYPE_VHDX",
    "COMPUTE_IMAGE_TYPE_VMDK",
    "COMPUTE_MANAGED_PCI_DEVICE",
    "COMPUTE_MEM_BACKING_FILE",
    "COMPUTE_MIGRATE_AUTO_CONVERGE",
    "COMPUTE_MIGRATE_POST_COPY",
    "COMPUTE_NET_ATTACH_INTERFACE",
    "COMPUTE_NET_ATTACH_INTERFACE_WITH_TAG",
    "COMPUTE_NET_VIF_MODEL_E1000",
    "COMPUTE_NET_VIF_MODEL_E1000E",
    "COMPUTE_NET_VIF_MODEL_IGB",
    "COMPUTE_NET_VIF_MODEL_LAN9118",
    "COMPUTE_NET_VIF_MODEL_NE2K_PCI",
    "COMPUTE_NET_VIF_MODEL_NETFRONT",
    "COMPUTE_NET_VIF_MODEL_PCNET",
    "COMPUTE_NET_VIF_MODEL_RTL8139",
    "COMPUTE_NET_VIF_MODEL_SPAPR_VLAN",
    "COMPUTE_NET_VIF_MODEL_SRIOV",
    "COMPUTE_NET_VIF_MODEL_VIRTIO",
    "COMPUTE_NET_VIF_MODEL_VMXNET",
    "COMPUTE_NET_VIF_MODEL_VMXNET3",
    "COMPUTE_NET_VIRTIO_PACKED",
    "COMPUTE_NODE",
    "COMPUTE_REMOTE_MANAGED_PORTS",
    "COMPUTE_RESCUE_BFV",
    "COMPUTE_SAME_HOST_COLD_MIGRATE",
    "COMPUTE_SECURITY_STATELESS_FIRMWARE",
    "COMPUTE_SECURITY_TPM_1_2",
    "COMPUTE_SECURITY_TPM_2_0",
    "COMPUTE_SECURITY_TPM_CRB",
    "COMPUTE_SECURITY_TPM_SECRET_SECURITY_DEPLOYMENT",
    "COMPUTE_SECURITY_TPM_SECRET_SECURITY_HOST",
    "COMPUTE_SECURITY_TPM_SECRET_SECURITY_USER",
    "COMPUTE_SECURITY_TPM_TIS",
    "COMPUTE_SECURITY_UEFI_SECURE_BOOT",
    "COMPUTE_SHARE_LOCAL_FS",
    "COMPUTE_SOCKET_PCI_NUMA_AFFINITY",
    "COMPUTE_SOUND_MODEL_AC97",
    "COMPUTE_SOUND_MODEL_ES1370",
    "COMPUTE_SOUND_MODEL_ICH6",
    "COMPUTE_SOUND_MODEL_ICH9",
    "COMPUTE_SOUND_MODEL_PCSPK",
    "COMPUTE_SOUND_MODEL_SB16",
    "COMPUTE_SOUND_MODEL_USB",
    "COMPUTE_SOUND_MODEL_VIRTIO",
    "COMPUTE_STATUS_DISABLED",
    "COMPUTE_STORAGE_BUS_FDC",
    "COMPUTE_STORAGE_BUS_IDE",
    "COMPUTE_STORAGE_BUS_LXC",
    "COMPUTE_STORAGE_BUS_SATA",
    "COMPUTE_STORAGE_BUS_SCSI",
    "COMPUTE_STORAGE_BUS_UML",
    "COMPUTE_STORAGE_BUS_USB",
    "COMPUTE_STORAGE_BUS_VIRTIO",
    "COMPUTE_STORAGE_BUS_XEN",
    "COMPUTE_STORAGE_VIRTIO_FS",
    "COMPUTE_TRUSTED_CERTS",
    "COMPUTE_USB_MODEL_NEC_XHCI",
    "COMPUTE_USB_MODEL_QEMU_XHCI",
    "COMPUTE_VIOMMU_MODEL_AUTO",
    "COMPUTE_VIOMMU_MODEL_INTEL",
    "COMPUTE_VIOMMU_MODEL_SMMUV3",
    "COMPUTE_VIOMMU_MODEL_VIRTIO",
    "COMPUTE_VOLUME_ATTACH",
    "COMPUTE_VOLUME_ATTACH_WITH_TAG",
    "COMPUTE_VOLUME_EXTEND",
    "COMPUTE_VOLUME_MULTI_ATTACH",
    "HW_ARCH_AARCH64",
    "HW_ARCH_ALPHA",
    "HW_ARCH_ARMV6",
    "HW_ARCH_ARMV7",
    "HW_ARCH_ARMV7B",
    "HW_ARCH_CRIS",
    "HW_ARCH_I686",
    "HW_ARCH_IA64",
    "HW_ARCH_LM32",
    "HW_ARCH_M68K",
    "HW_ARCH_MICROBLAZE",
    "HW_ARCH_MICROBLAZEEL",
    "HW_ARCH_MIPS",
    "HW_ARCH_MIPS64",
    "HW_ARCH_MIPS64EL",
    "HW_ARCH_MIPSEL",
    "HW_ARCH_OPENRISC",
    "HW_ARCH_PARISC",
    "HW_ARCH_PARISC64",
    "HW_ARCH_PPC",
    "HW_ARCH_PPC64",
    "HW_ARCH_PPC64LE",
    "HW_ARCH_PPCEMB",
    "HW_ARCH_PPCLE",
    "HW_ARCH_S390",
    "HW_ARCH_S390X",
    "HW_ARCH_SH4",
    "HW_ARCH_SH4EB",
    "HW_ARCH_SPARC",
    "HW_ARCH_SPARC64",
    "HW_ARCH_UNICORE32",
    "HW_ARCH_X86_64",
    "HW_ARCH_XTENSA",
    "HW_ARCH_XTENSAEB",
    "HW_CPU_AARCH64_AES",
    "HW_CPU_AARCH64_ASIMD",
    "HW_CPU_AARCH64_ASIMDDP",
    "HW_CPU_AARCH64_ASIMDHP",
    "HW_CPU_AARCH64_ASIMDRDM",
    "HW_CPU_AARCH64_ATOMICS",
    "HW_CPU_AARCH64_CPUID",
    "HW_CPU_AARCH64_CRC32",
    "HW_CPU_AARCH64_DCPOP",
    "HW_CPU_AARCH64_EVTSTRM",
    "HW_CPU_AARCH64_FCMA",
    "HW_CPU_AARCH64_FP",
    "HW_CPU_AARCH64_FPHP",
    "HW_CPU_AARCH64_JSCVT",
    "HW_CPU_AARCH64_LRCPC",
    "HW_CPU_AARCH64_PMULL",
    "HW_CPU_AARCH64_SHA1",
    "HW_CPU_AARCH64_SHA2",
    "HW_CPU_AARCH64_SHA3",
    "HW_CPU_AARCH64_SHA512",
    "HW_CPU_AARCH64_SM3",
    "HW_CPU_AARCH64_SM4",
    "HW_CPU_AARCH64_SVE",
    "HW_CPU_AMD_SEV",
    "HW_CPU_HYPERTHREADING",
    "HW_CPU_PPC64LE_POWER8",
    "HW_CPU_PPC64LE_POWER9",
    "HW_CPU_X86_3DNOW",
    "HW_CPU_X86_ABM",
    "HW_CPU_X86_AESNI",
    "HW_CPU_X86_AMD_IBPB",
    "HW_CPU_X86_AMD_NO_SSB",
    "HW_CPU_X86_AMD_SEV",
    "HW_CPU_X86_AMD_SEV_ES",
    "HW_CPU_X86_AMD_SEV_SNP",
    "HW_CPU_X86_AMD_SSBD",
    "HW_CPU_X86_AMD_SVM",
    "HW_CPU_X86_AMD_VIRT_SSBD",
    "HW_CPU_X86_AMXBF16",
    "HW_CPU_X86_AMXINT8",
    "HW_CPU_X86_AMXTILE",
    "HW_CPU_X86_ASF",
    "HW_CPU_X86_AVX",
    "HW_CPU_X86_AVX2",
    "HW_CPU_X86_AVX512BITALG",
    "HW_CPU_X86_AVX512BW",
    "HW_CPU_X86_AVX512CD",
    "HW_CPU_X86_AVX512DQ",
    "HW_CPU_X86_AVX512ER",
    "HW_CPU_X86_AVX512F",
    "HW_CPU_X86_AVX512GFNI",
    "HW_CPU_X86_AVX512IFMA",
    "HW_CPU_X86_AVX512PF",
    "HW_CPU_X86_AVX512VAES",
    "HW_CPU_X86_AVX512VBMI",
    "HW_CPU_X86_AVX512VBMI2",
    "HW_CPU_X86_AVX512VL",
    "HW_CPU_X86_AVX512VNNI",
    "HW_CPU_X86_AVX512VPCLMULQDQ",
    "HW_CPU_X86_AVX512VPOPCNTDQ",
    "HW_CPU_X86_BMI",
    "HW_CPU_X86_BMI2",
    "HW_CPU_X86_CLMUL",
    "HW_CPU_X86_F16C",
    "HW_CPU_X86_FMA3",
    "HW_CPU_X86_FMA4",
    "HW_CPU_X86_INTEL_MD_CLEAR",
    "HW_CPU_X86_INTEL_PCID",
    "HW_CPU_X86_INTEL_SPEC_CTRL",
    "HW_CPU_X86_INTEL_SSBD",
    "HW_CPU_X86_INTEL_TDX",
    "HW_CPU_X86_INTEL_VMX",
    "HW_CPU_X86_MMX",
    "HW_CPU_X86_MPX",
    "HW_CPU_X86_PDPE1GB",
    "HW_CPU_X86_SGX",
    "HW_CPU_X86_SHA",
    "HW_CPU_X86_SSE",
    "HW_CPU_X86_SSE2",
    "HW_CPU_X86_SSE3",
    "HW_CPU_X86_SSE41",
    "HW_CPU_X86_SSE42",
    "HW_CPU_X86_SSE4A",
    "HW_CPU_X86_SSSE3",
    "HW_CPU_X86_STIBP",
    "HW_CPU_X86_SVM",
    "HW_CPU_X86_TBM",
    "HW_CPU_X86_TSX",
    "HW_CPU_X86_VMX",
    "HW_CPU_X86_XOP",
    "HW_GPU_API_DIRECT2D",
    "HW_GPU_API_DIRECT3D_V10_0",
    "HW_GPU_API_DIRECT3D_V10_1",
    "HW_GPU_API_DIRECT3D_V11_0",
    "HW_GPU_API_DIRECT3D_V11_1",
    "HW_GPU_API_DIRECT3D_V11_2",
    "HW_GPU_API_DIRECT3D_V11_3",
    "HW_GPU_API_DIRECT3D_V12_0",
    "HW_GPU_API_DIRECT3D_V6_0",
    "HW_GPU_API_DIRECT3D_V7_0",
    "HW_GPU_API_DIRECT3D_V8_0",
    "HW_GPU_API_DIRECT3D_V8_1",
    "HW_GPU_API_DIRECT3D_V9_0",
    "HW_GPU_API_DIRECT3D_V9_0B",
    "HW_GPU_API_DIRECT3D_V9_0C",
    "HW_GPU_API_DIRECT3D_V9_0L",
    "HW_GPU_API_DIRECTX_V10",
    "HW_GPU_API_DIRECTX_V11",
    "HW_GPU_API_DIRECTX_V12",
    "HW_GPU_API_DXVA",
    "HW_GPU_API_OPENCL_V1_0",
    "HW_GPU_API_OPENCL_V1_1",
    "HW_GPU_API_OPENCL_V1_2",
    "HW_GPU_API_OPENCL_V2_0",
    "HW_GPU_API_OPENCL_V2_1",
    "HW_GPU_API_OPENCL_V2_2",
    "HW_GPU_API_OPENGL_V1_1",
    "HW_GPU_API_OPENGL_V1_2",
    "HW_GPU_API_OPENGL_V1_3",
    "HW_GPU_API_OPENGL_V1_4",
    "HW_GPU_API_OPENGL_V1_5",
    "HW_GPU_API_OPENGL_V2_0",
    "HW_GPU_API_OPENGL_V2_1",
    "HW_GPU_API_OPENGL_V3_0",
    "HW_GPU_API_OPENGL_V3_1",
    "HW_GPU_API_OPENGL_V3_2",
    "HW_GPU_API_OPENGL_V3_3",
    "HW_GPU_API_OPENGL_V4_0",
    "HW_GPU_API_OPENGL_V4_1",
    "HW_GPU_API_OPENGL_V4_2",
    "HW_GPU_API_OPENGL_V4_3",
    "HW_GPU_API_OPENGL_V4_4",
    "HW_GPU_API_OPENGL_V4_5",
    "HW_GPU_API_VULKAN",
    "HW_GPU_CUDA_COMPUTE_CAPABILITY_V1_0",
    "HW_GPU_CUDA_COMPUTE_CAPABILITY_V1_1",
    "HW_GPU_CUDA_COMPUTE_CAPABILITY_V1_2",
    "HW_GPU_CUDA_COMPUTE_CAPABILITY_V1_3",
    "HW_GPU_CUDA_COMPUTE_CAPABILITY_V2_0",
    "HW_GPU_CUDA_COMPUTE_CAPABILITY_V2_1",
    "HW_GPU_CUDA_COMPUTE_CAPABILITY_V3_0",
    "HW_GPU_CUDA_COMPUTE_CAPABILITY_V3_2",
    "HW_GPU_CUDA_COMPUTE_CAPABILITY_V3_5",
    "HW_GPU_CUDA_COMPUTE_CAPABILITY_V3_7",
    "HW_GPU_CUDA_COMPUTE_CAPABILITY_V5_0",
    "HW_GPU_CUDA_COMPUTE_CAPABILITY_V5_2",
    "HW_GPU_CUDA_COMPUTE_CAPABILITY_V5_3",
    "HW_GPU_CUDA_COMPUTE_CAPABILITY_V6_0",
    "HW_GPU_CUDA_COMPUTE_CAPABILITY_V6_1",
    "HW_GPU_CUDA_COMPUTE_CAPABILITY_V6_2",
    "HW_GPU_CUDA_COMPUTE_CAPABILITY_V7_0",
    "HW_GPU_CUDA_COMPUTE_CAPABILITY_V7_1",
    "HW_GPU_CUDA_COMPUTE_CAPABILITY_V7_2",
    "HW_GPU_CUDA_SDK_V10_0",
    "HW_GPU_CUDA_SDK_V6_5",
    "HW_GPU_CUDA_SDK_V7_5",
    "HW_GPU_CUDA_SDK_V8_0",
    "HW_GPU_CUDA_SDK_V9_0",
    "HW_GPU_CUDA_SDK_V9_1",
    "HW_GPU_CUDA_SDK_V9_2",
    "HW_GPU_MAX_DISPLAY_HEADS_1",
    "HW_GPU_MAX_DISPLAY_HEADS_2",
    "HW_GPU_MAX_DISPLAY_HEADS_4",
    "HW_GPU_MAX_DISPLAY_HEADS_6",
    "HW_GPU_MAX_DISPLAY_HEADS_8",
    "HW_GPU_RESOLUTION_W1024H600",
    "HW_GPU_RESOLUTION_W1024H768",
    "HW_GPU_RESOLUTION_W1152H864",
    "HW_GPU_RESOLUTION_W1280H1024",
    "HW_GPU_RESOLUTION_W1280H720",
    "HW_GPU_RESOLUTION_W1280H768",
    "HW_GPU_RESOLUTION_W1280H800",
    "HW_GPU_RESOLUTION_W1360H768",
    "HW_GPU_RESOLUTION_W1366H768",
    "HW_GPU_RESOLUTION_W1440H900",
    "HW_GPU_RESOLUTION_W1600H1200",
    "HW_GPU_RESOLUTION_W1600H900",
    "HW_GPU_RESOLUTION_W1680H1050",
    "HW_GPU_RESOLUTION_W1920H1080",
    "HW_GPU_RESOLUTION_W1920H1200",
    "HW_GPU_RESOLUTION_W2560H1440",
    "HW_GPU_RESOLUTION_W2560H1600",
    "HW_GPU_RESOLUTION_W320H240",
    "HW_GPU_RESOLUTION_W3840H2160",
    "HW_GPU_RESOLUTION_W640H480",
    "HW_GPU_RESOLUTION_W7680H4320",
    "HW_GPU_RESOLUTION_W800H600",
    "HW_NIC_ACCEL_DEFLATE",
    "HW_NIC_ACCEL_DIFFIEH",
    "HW_NIC_ACCEL_ECC",
    "HW_NIC_ACCEL_IPSEC",
    "HW_NIC_ACCEL_LZS",
    "HW_NIC_ACCEL_RSA",
    "HW_NIC_ACCEL_SSL",
    "HW_NIC_ACCEL_TLS",
    "HW_NIC_DCB_ETS",
    "HW_NIC_DCB_PFC",
    "HW_NIC_DCB_QCN",
    "HW_NIC_MULTIQUEUE",
    "HW_NIC_OFFLOAD_FDF",
    "HW_NIC_OFFLOAD_GENEVE",
    "HW_NIC_OFFLOAD_GRE",
    "HW_NIC_OFFLOAD_GRO",
    "HW_NIC_OFFLOAD_GSO",
    "HW_NIC_OFFLOAD_L2CRC",
    "HW_NIC_OFFLOAD_LRO",
    "HW_NIC_OFFLOAD_LSO",
    "HW_NIC_OFFLOAD_QINQ",
    "HW_NIC_OFFLOAD_RDMA",
    "HW_NIC_OFFLOAD_RX",
    "HW_NIC_OFFLOAD_RXHASH",
    "HW_NIC_OFFLOAD_RXVLAN",
    "HW_NIC_OFFLOAD_SCS",
    "HW_NIC_OFFLOAD_SG",
    "HW_NIC_OFFLOAD_SWITCHDEV",
    "HW_NIC_OFFLOAD_TCS",
    "HW_NIC_OFFLOAD_TSO",
    "HW_NIC_OFFLOAD_TX",
    "HW_NIC_OFFLOAD_TXUDP",
    "HW_NIC_OFFLOAD_TXVLAN",
    "HW_NIC_OFFLOAD_UCS",
    "HW_NIC_OFFLOAD_UFO",
    "HW_NIC_OFFLOAD_VXLAN",
    "HW_NIC_PROGRAMMABLE_PIPELINE",
    "HW_NIC_SRIOV",
    "HW_NIC_SRIOV_MULTIQUEUE",
    "HW_NIC_SRIOV_QOS_RX",
    "HW_NIC_SRIOV_QOS_TX",
    "HW_NIC_SRIOV_TRUSTED",
    "HW_NIC_VMDQ",
    "HW_NUMA_ROOT",
    "HW_NVME_BES",
    "HW_NVME_CES",
    "HW_NVME_WZS",
    "HW_PCI_LIVE_MIGRATABLE",
    "HW_PCI_ONE_TIME_USE",
    "MISC_SHARES_VIA_AGGREGATE",
    "OWNER_CYBORG",
    "OWNER_NOVA",
    "STORAGE_DISK_HDD",
    "STORAGE_DISK_SSD",
];

/// `^(?:pattern)$`: Nova matches keys and value formats as a whole. A
/// pattern that does not compile matches nothing (the tests compile them all).
fn whole(pattern: &str) -> Option<Regex> {
    Regex::new(&format!("^(?:{pattern})$")).ok()
}

/// [`PATTERNED`], compiled once.
static PATTERNED_RE: LazyLock<Vec<(Option<Regex>, Rule)>> =
    LazyLock::new(|| PATTERNED.iter().map(|(p, r)| (whole(p), *r)).collect());

/// A `resources` or `trait` key: the namespace, and the name after its colon.
static GROUPED_KEY: LazyLock<Option<Regex>> = LazyLock::new(|| whole(&format!("(resources|trait)(?:{GROUP})?:(.*)")));

/// A `resources` or `trait` namespace, with or without its group suffix.
static GROUPED_NAMESPACE: LazyLock<Option<Regex>> = LazyLock::new(|| whole(&format!("(resources|trait)(?:{GROUP})?")));

/// An operator-defined class or trait: `CUSTOM_` and upper-case letters, digits or `_`.
fn is_custom(name: &str) -> bool {
    name.strip_prefix("CUSTOM_").is_some_and(|rest| {
        !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
    })
}

/// What Nova's registry says of a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Known {
    /// Registered: its value must follow the rule.
    Registered(Rule),
    /// In a namespace Nova knows, but not registered: refused.
    Unregistered,
    /// Without a namespace, or in one Nova does not know: taken as it is.
    Free,
}

/// Look `key` up in the registry.
fn lookup(key: &str) -> Known {
    if let Some((_, rule)) = FIXED.iter().find(|(k, _)| *k == key) {
        return Known::Registered(*rule);
    }
    if key.strip_prefix("capabilities:").is_some_and(|c| CAPABILITIES.contains(&c)) {
        return Known::Registered(Rule::Any);
    }
    if let Some((_, rule)) = PATTERNED_RE.iter().find(|(re, _)| re.as_ref().is_some_and(|re| re.is_match(key))) {
        return Known::Registered(*rule);
    }
    if let Some(caps) = GROUPED_KEY.as_ref().and_then(|re| re.captures(key)) {
        let name = caps.get(2).map_or("", |m| m.as_str());
        match caps.get(1).map(|m| m.as_str()) {
            Some("resources") if RESOURCE_CLASSES.contains(&name) || is_custom(name) => {
                return Known::Registered(INT);
            }
            Some("trait") if TRAITS.contains(&name) || is_custom(name) => {
                return Known::Registered(Rule::OneOf(&["required", "forbidden"]));
            }
            _ => {}
        }
    }
    let Some((namespace, _)) = key.split_once(':') else { return Known::Free };
    if NAMESPACES.contains(&namespace) || GROUPED_NAMESPACE.as_ref().is_some_and(|re| re.is_match(namespace)) {
        Known::Unregistered
    } else {
        Known::Free
    }
}

/// Python's `int()` of a text: blanks around it, a sign, decimal digits
/// with single `_` between them. The value in its plain decimal form (as
/// Nova's messages show it) and as a number (saturated past `i128`).
fn python_int(v: &str) -> Option<(String, i128)> {
    let t = v.trim();
    let (negative, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let well_formed = !digits.is_empty()
        && !digits.starts_with('_')
        && !digits.ends_with('_')
        && !digits.contains("__")
        && digits.bytes().all(|b| b.is_ascii_digit() || b == b'_');
    if !well_formed {
        return None;
    }
    let plain: String = digits.chars().filter(char::is_ascii_digit).collect();
    let plain = plain.trim_start_matches('0');
    let plain = if plain.is_empty() { "0" } else { plain };
    let magnitude = plain.parse::<i128>().unwrap_or(i128::MAX);
    let shown = if negative && plain != "0" { format!("-{plain}") } else { plain.to_string() };
    Some((shown, if negative { -magnitude } else { magnitude }))
}

/// Nova's 400 for an extra spec that fails validation.
fn failed(why: String) -> RequestError {
    RequestError::BadRequest(format!("Validation failed; {why}"))
}

/// Check `value` against `rule`, with Nova's messages.
fn check_value(rule: Rule, value: &str) -> Result<(), RequestError> {
    match rule {
        Rule::Any => Ok(()),
        Rule::Bool => {
            let word = value.trim().to_lowercase();
            if matches!(
                word.as_str(),
                "1" | "t" | "true" | "on" | "y" | "yes" | "0" | "f" | "false" | "off" | "n" | "no"
            ) {
                Ok(())
            } else {
                Err(failed(format!("'{value}' is not a valid boolean-like value.")))
            }
        }
        Rule::Int { min, max } => {
            let (shown, n) =
                python_int(value).ok_or_else(|| failed(format!("'{value}' is not a valid integer value.")))?;
            if let Some(max) = max
                && n > i128::from(max)
            {
                return Err(failed(format!("'{shown}' is greater than the max value of '{max}'.")));
            }
            if let Some(min) = min
                && n < i128::from(min)
            {
                return Err(failed(format!("'{shown}' is less than the min value of '{min}'.")));
            }
            Ok(())
        }
        Rule::OneOf(words) => {
            if words.contains(&value) {
                Ok(())
            } else {
                Err(failed(format!("'{value}' is not one of: {}.", words.join(", "))))
            }
        }
        Rule::Format(pattern) => {
            if whole(pattern).is_some_and(|re| re.is_match(value)) {
                Ok(())
            } else {
                Err(failed(format!("'{value}' is not of the format '{pattern}'.")))
            }
        }
    }
}

/// Check one extra spec as Nova does from microversion 2.86: a registered
/// key needs a valid value, an unregistered key in a namespace Nova knows
/// is refused, any other key is taken as it is. Numbers are checked as
/// their text.
pub fn check_extra_spec(key: &str, value: &str) -> Result<(), RequestError> {
    match lookup(key) {
        Known::Registered(rule) => check_value(rule, value),
        Known::Unregistered => Err(failed(format!("extra spec '{key}' does not appear to be a valid extra spec."))),
        Known::Free => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(key: &str, value: &str) -> String {
        match check_extra_spec(key, value) {
            Err(RequestError::BadRequest(m)) => m,
            other => panic!("{key}={value}: expected a 400, got {other:?}"),
        }
    }

    /// Every pattern of the table compiles (a broken one would refuse all).
    #[test]
    fn every_pattern_compiles() {
        for (p, _) in PATTERNED {
            assert!(whole(p).is_some(), "{p}");
        }
        for (k, rule) in FIXED.iter().chain(PATTERNED) {
            if let Rule::Format(p) = rule {
                assert!(whole(p).is_some(), "{k}: {p}");
            }
        }
        assert!(GROUPED_KEY.is_some() && GROUPED_NAMESPACE.is_some());
    }

    /// Nova 2.86: registered keys with values of their kind are accepted.
    #[test]
    fn registered_keys_with_valid_values_pass() {
        for (k, v) in [
            ("hw:cpu_policy", "dedicated"),
            ("hw:numa_nodes", "2"),
            ("hw:numa_nodes", " +2 "),
            ("hw:numa_cpus.0", "0-3,^2"),
            ("hw:numa_mem.1", "1024"),
            ("hw:mem_page_size", "2MiB"),
            ("hw:mem_page_size", "large"),
            ("hw:cpu_realtime", "Yes"),
            ("hw:redirected_usb_ports", "15"),
            ("hw_rng:allowed", "False"),
            ("hw_video:ram_max_mb", "64"),
            ("os:secure_boot", "required"),
            ("pci_passthrough:alias", "a1:2, b2:1"),
            ("quota:cpu_quota", "-1"),
            ("quota:disk_read_bytes_sec", "10_240"),
            ("resources:VCPU", "2"),
            ("resources1:CUSTOM_MAGIC", "1"),
            ("resources_net:PCPU", "0"),
            ("trait:HW_CPU_X86_AVX2", "required"),
            ("trait2:CUSTOM_GOLD", "forbidden"),
            ("capabilities:hypervisor_type", "s== QEMU"),
            ("capabilities:cpu_info:arch", "x86_64"),
            ("aggregate_instance_extra_specs:ssd", "true"),
            ("accel:device_profile", "gpu"),
            ("vmware:hw_version", "vmx-13"),
            ("group_policy", "isolate"),
            ("hide_hypervisor_id", "true"),
        ] {
            assert_eq!(check_extra_spec(k, v), Ok(()), "{k}={v}");
        }
    }

    /// Nova 2.86 validates only the namespaces it knows: others, and keys
    /// without a namespace, are taken as they are.
    #[test]
    fn unknown_namespaces_and_plain_keys_pass() {
        for k in ["foo:bar", "key1", "powervm:proc_units", "hwx:cpu_policy"] {
            assert_eq!(check_extra_spec(k, "anything"), Ok(()), "{k}");
        }
        // A request group is at most 64 characters: past that `resources…`
        // is not a namespace Nova knows.
        assert_eq!(check_extra_spec(&format!("resources{}:VCPU", "g".repeat(65)), "x"), Ok(()));
        assert!(check_extra_spec(&format!("resources{}:VCPU", "g".repeat(64)), "x").is_err());
    }

    /// Nova 2.86: a key of a known namespace that is not registered is a 400.
    #[test]
    fn unregistered_keys_in_known_namespaces_are_refused() {
        for k in [
            "hw:cpu_polcy",
            "hw_rng:foo",
            "os:foo",
            "quota:foo",
            "capabilities:foo",
            "resources:FOO",
            "resources1:custom_x",
            "trait:HW_NOT_A_TRAIT",
            "traits:HW_NOPE",
            "accel:foo",
            "vmware:foo",
        ] {
            assert_eq!(
                refused(k, "1"),
                format!("Validation failed; extra spec '{k}' does not appear to be a valid extra spec."),
            );
        }
    }

    /// Nova 2.86's messages for a registered key with a bad value.
    #[test]
    fn bad_values_get_novas_messages() {
        assert_eq!(
            refused("hw:cpu_policy", "fast"),
            "Validation failed; 'fast' is not one of: dedicated, shared, mixed."
        );
        assert_eq!(refused("hw:numa_nodes", "two"), "Validation failed; 'two' is not a valid integer value.");
        assert_eq!(refused("hw:numa_nodes", "1.5"), "Validation failed; '1.5' is not a valid integer value.");
        assert_eq!(refused("hw:numa_nodes", "0"), "Validation failed; '0' is less than the min value of '1'.");
        assert_eq!(
            refused("hw:redirected_usb_ports", "+016"),
            "Validation failed; '16' is greater than the max value of '15'."
        );
        assert_eq!(
            refused("hw:cpu_realtime", "maybe"),
            "Validation failed; 'maybe' is not a valid boolean-like value."
        );
        assert_eq!(
            refused("hw:mem_page_size", "huge"),
            "Validation failed; 'huge' is not of the format '(large|small|any|\\d+([kKMGT]i?)?(b|bit|B)?)'."
        );
        assert_eq!(
            refused("trait:HW_CPU_X86_AVX2", "yes"),
            "Validation failed; 'yes' is not one of: required, forbidden."
        );
        assert_eq!(refused("resources:VCPU", "-"), "Validation failed; '-' is not a valid integer value.");
        // `traits` is `trait` with the request group `s`, as in Nova.
        assert_eq!(
            refused("traits:HW_CPU_X86_AVX2", "1"),
            "Validation failed; '1' is not one of: required, forbidden."
        );
        assert_eq!(refused("group_policy", "all"), "Validation failed; 'all' is not one of: isolate, none.");
        assert!(refused("hw:numa_cpus.0", "0-a").contains("is not of the format"));
        assert!(refused("pci_passthrough:alias", "a1").contains("is not of the format"));
    }

    /// Python's `int()`: blanks, a sign, `_` between digits; nothing else.
    #[test]
    fn integers_read_as_python_reads_them() {
        assert_eq!(python_int(" -0_7 "), Some(("-7".into(), -7)));
        assert_eq!(python_int("000"), Some(("0".into(), 0)));
        assert_eq!(python_int("-0"), Some(("0".into(), 0)));
        for bad in ["", "+", "1__0", "_1", "1_", "1e3", "0x10", "1.0"] {
            assert_eq!(python_int(bad), None, "{bad}");
        }
        let huge = "9".repeat(60);
        assert_eq!(python_int(&huge).map(|(_, n)| n), Some(i128::MAX));
    }
}
