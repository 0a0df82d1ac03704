//! Buffers: creation, uploads and asynchronous readback (one code path for
//! native and wasm: `map_async` + a future; natively the device is polled).

use crate::error::{Error, Result};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskCx, Poll, Waker};
use wgpu::util::DeviceExt;

/// Storage buffer usage shared by every tensor buffer.
pub(crate) const STORAGE: wgpu::BufferUsages =
    wgpu::BufferUsages::STORAGE.union(wgpu::BufferUsages::COPY_SRC).union(wgpu::BufferUsages::COPY_DST);

/// A buffer destroyed when its last owner drops it. wgpu's native backends free a dropped
/// buffer at once, but its browser backend leaves the `GPUBuffer` to the JavaScript
/// garbage collector, which knows nothing of GPU memory; explicit `destroy()` frees it now.
/// Shared (weights between executables) through an `Arc`.
#[derive(Debug)]
pub struct Owned(wgpu::Buffer);

impl Owned {
    /// Takes ownership of `b`: it is destroyed when this is dropped.
    pub(crate) fn new(b: wgpu::Buffer) -> Self {
        Owned(b)
    }
}

impl std::ops::Deref for Owned {
    type Target = wgpu::Buffer;
    fn deref(&self) -> &wgpu::Buffer {
        &self.0
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        self.0.destroy();
    }
}

/// Creates a storage buffer holding exactly `data` (an empty tensor gets 16
/// zero bytes, so it still binds). Exact sizes matter: kernels and the
/// optimizer take a parameter's length from its buffer.
/// Uploads `data` rounded to f16, two per u32 (low half first), padded to a whole u32.
pub(crate) fn upload_f16(device: &wgpu::Device, label: &str, data: &[f32]) -> wgpu::Buffer {
    let mut packed: Vec<u32> =
        data.chunks(2).map(|p| f16_bits(p[0]) as u32 | (p.get(1).map_or(0, |&v| f16_bits(v)) as u32) << 16).collect();
    if packed.is_empty() {
        packed.resize(4, 0);
    }
    device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some(label),
        contents: bytemuck::cast_slice(&packed),
        usage: STORAGE,
    })
}

/// IEEE binary16 bits of `x`, rounded to nearest even (as unpack2x16float reads
/// them back): overflow to infinity, subnormals kept, NaN stays NaN.
pub fn f16_bits(x: f32) -> u16 {
    let b = x.to_bits();
    let sign = ((b >> 16) & 0x8000) as u16;
    let exp = ((b >> 23) & 0xff) as i32;
    let man = b & 0x7f_ffff;
    if exp == 0xff {
        return sign | 0x7c00 | if man != 0 { 0x200 } else { 0 };
    }
    let e = exp - 127 + 15;
    if e >= 0x1f {
        return sign | 0x7c00;
    }
    // The significand with its implicit bit, and how many low bits to drop.
    let (full, shift) = if e <= 0 {
        if e < -10 {
            return sign;
        }
        (man | 0x80_0000, (14 - e) as u32)
    } else {
        (man, 13)
    };
    let mut h = full >> shift;
    let rest = full & ((1 << shift) - 1);
    let half = 1 << (shift - 1);
    if rest > half || (rest == half && h & 1 == 1) {
        h += 1;
    }
    // A carry out of the significand moves into the exponent, which is exact.
    let bits = if e <= 0 { h } else { ((e as u32) << 10) + h };
    sign | bits as u16
}

/// The f32 value of IEEE binary16 bits (CPU references of f16 weights).
pub fn f16_value(h: u16) -> f32 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = ((h >> 10) & 0x1f) as i32;
    let man = (h & 0x3ff) as f32;
    sign * match exp {
        0 => man * 2f32.powi(-24),
        0x1f if man == 0.0 => f32::INFINITY,
        0x1f => f32::NAN,
        _ => (1.0 + man / 1024.0) * 2f32.powi(exp - 15),
    }
}

pub(crate) fn upload(device: &wgpu::Device, label: &str, data: &[f32]) -> wgpu::Buffer {
    if data.is_empty() {
        return upload(device, label, &[0.0; 4]);
    }
    device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some(label),
        contents: bytemuck::cast_slice(data),
        usage: STORAGE,
    })
}

/// Creates an uninitialised storage buffer of `bytes` bytes (rounded up to 16).
pub(crate) fn storage(device: &wgpu::Device, label: &str, bytes: u64) -> wgpu::Buffer {
    device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: bytes.max(16).div_ceil(16) * 16,
        usage: STORAGE,
        mapped_at_creation: false,
    })
}

/// Creates a buffer the CPU can map for reading.
pub(crate) fn staging(device: &wgpu::Device, bytes: u64) -> wgpu::Buffer {
    device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("readback"),
        size: bytes.max(16).div_ceil(16) * 16,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    })
}

type MapSlot = Arc<Mutex<(Option<std::result::Result<(), wgpu::BufferAsyncError>>, Option<Waker>)>>;

/// Future resolved by a `map_async` callback.
struct MapFuture(MapSlot);

impl Future for MapFuture {
    type Output = std::result::Result<(), wgpu::BufferAsyncError>;
    fn poll(self: Pin<&mut Self>, cx: &mut TaskCx<'_>) -> Poll<Self::Output> {
        let mut slot = match self.0.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        match slot.0.take() {
            Some(r) => Poll::Ready(r),
            None => {
                slot.1 = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// Resolves when the GPU has finished all work submitted so far.
pub(crate) async fn work_done(device: &wgpu::Device, queue: &wgpu::Queue) -> Result<()> {
    let slot: MapSlot = Arc::new(Mutex::new((None, None)));
    let cb_slot = slot.clone();
    queue.on_submitted_work_done(move || {
        let mut s = match cb_slot.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        s.0 = Some(Ok(()));
        if let Some(w) = s.1.take() {
            w.wake();
        }
    });
    device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| Error::Gpu(format!("device lost while waiting for the GPU: {e}")))?;
    MapFuture(slot).await.map_err(|e| Error::Gpu(format!("GPU work failed: {e}")))
}

/// Reads `len` f32 values from a mappable staging buffer, asynchronously.
pub(crate) async fn read_f32(device: &wgpu::Device, buf: &wgpu::Buffer, len: usize) -> Result<Vec<f32>> {
    let bytes = (len * 4) as u64;
    let slot: MapSlot = Arc::new(Mutex::new((None, None)));
    let cb_slot = slot.clone();
    buf.slice(..bytes.max(4)).map_async(wgpu::MapMode::Read, move |r| {
        let mut s = match cb_slot.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        s.0 = Some(r);
        if let Some(w) = s.1.take() {
            w.wake();
        }
    });
    // Natively, drive the device until the map completes; in the browser the
    // callback fires from the event loop and this poll is a no-op.
    device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| Error::Gpu(format!("device lost while waiting for results: {e}")))?;
    MapFuture(slot).await.map_err(|e| Error::Gpu(format!("cannot map readback buffer: {e}")))?;
    let out = {
        let view = buf.slice(..bytes.max(4)).get_mapped_range().map_err(|e| Error::Gpu(format!("cannot read mapped buffer: {e}")))?;
        let all: &[f32] = bytemuck::cast_slice(&view);
        all[..len].to_vec()
    };
    buf.unmap();
    Ok(out)
}

/// Copies the first `len` floats of `buf` to a staging buffer and reads them.
pub(crate) async fn read_buffer(device: &wgpu::Device, queue: &wgpu::Queue, buf: &wgpu::Buffer, len: usize) -> Result<Vec<f32>> {
    let rb = staging(device, len as u64 * 4);
    let mut enc = device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("read buffer") });
    enc.copy_buffer_to_buffer(buf, 0, &rb, 0, Some(len as u64 * 4));
    queue.submit([enc.finish()]);
    let out = read_f32(device, &rb, len).await;
    rb.destroy(); // a one-off staging buffer: freed now, not at the browser's next garbage collection
    out
}

#[cfg(test)]
mod f16_tests {
    use super::{f16_bits, f16_value};

    #[test]
    fn f16_bits_round_to_nearest_even_like_the_hardware() {
        for (x, h) in [
            (1.0f32, 0x3c00u16),
            (-2.0, 0xc000),
            (65504.0, 0x7bff),
            (65520.0, 0x7c00), // rounds up to infinity
            (65519.0, 0x7bff),
            (f32::INFINITY, 0x7c00),
            (0.0, 0),
            (-0.0, 0x8000),
            (5.960_464_5e-8, 1),          // smallest subnormal
            (2.980_232_2e-8, 0),          // half of it: tie to even (0)
            (8.940_697e-8, 2),            // 1.5 x smallest: tie to even (2)
            (6.103_515_6e-5, 0x400),      // smallest normal
            (1.0 + 1.0 / 2048.0, 0x3c00), // tie between 1 and 1 + 2^-10: even
            (1.0 + 3.0 / 2048.0, 0x3c02), // tie: up to even
            (0.1, 0x2e66),
        ] {
            assert_eq!(f16_bits(x), h, "{x}");
        }
        assert!(f16_value(f16_bits(f32::NAN)).is_nan());
        // Every normal f16 round-trips, and f32s land within half an ulp.
        for h in 0x0400u16..0x7c00 {
            assert_eq!(f16_bits(f16_value(h)), h);
        }
        for i in 0..10_000 {
            let x = (i as f32 * 0.7331).sin() * 1000.0;
            let y = f16_value(f16_bits(x));
            assert!((y - x).abs() <= x.abs() * (1.0 / 2048.0) + 1e-7, "{x} -> {y}");
        }
    }
}
