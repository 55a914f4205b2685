//! The contract between the XDP program and the userspace daemon.
//!
//! Everything both sides must agree on lives here: limits, the `#[repr(C)]` layouts of
//! the BPF map keys and values, the outcome counters, and the small pieces of DNS wire
//! code (name lower-casing, checksums, header bits) that the kernel and userspace both
//! apply. A change here changes both sides at once.
#![no_std]

pub mod bench;
pub mod cookie;
pub mod frame;
pub mod limits;
pub mod maps;
pub mod negative;
pub mod rrl;
pub mod stats;
pub mod wire;
pub mod xdp;

#[cfg(feature = "user")]
mod pod {
    use crate::{
        bench::{GenConfig, Template},
        cookie::CookieConfig,
        maps::{AnswerSlot, NameEntry, NameKey},
        negative::{KnownName, NegativeConfig, WildcardKey, ZoneFacts},
        rrl::{RrlBucket, RrlConfig, RrlKey},
    };

    // SAFETY: all are #[repr(C)], Copy, made only of integers and byte arrays, with
    // explicit padding fields, so every bit pattern is a valid value.
    unsafe impl<const N: usize> aya::Pod for NameKey<N> {}
    unsafe impl aya::Pod for NameEntry {}
    unsafe impl aya::Pod for AnswerSlot {}
    unsafe impl aya::Pod for Template {}
    unsafe impl aya::Pod for GenConfig {}
    unsafe impl aya::Pod for KnownName {}
    unsafe impl aya::Pod for ZoneFacts {}
    unsafe impl aya::Pod for NegativeConfig {}
    unsafe impl aya::Pod for WildcardKey {}
    unsafe impl aya::Pod for RrlKey {}
    unsafe impl aya::Pod for CookieConfig {}
    unsafe impl aya::Pod for RrlBucket {}
    unsafe impl aya::Pod for RrlConfig {}
}
