//! The XDP actions (`enum xdp_action` of the kernel's uapi `linux/bpf.h`), for the
//! userspace side that reads what a program returned (BPF_PROG_TEST_RUN). The XDP
//! programs assert that these equal aya-ebpf's bindings.

pub const XDP_ABORTED: u32 = 0;
pub const XDP_DROP: u32 = 1;
pub const XDP_PASS: u32 = 2;
pub const XDP_TX: u32 = 3;
pub const XDP_REDIRECT: u32 = 4;
