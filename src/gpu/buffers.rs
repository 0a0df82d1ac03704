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

/// `data` rounded to f16 (nearest even), two per u32, low half first (as
/// WGSL's unpack2x16float reads them), the last u32's high half 0 for an odd length.
pub(crate) fn pack_f16(data: &[f32]) -> Vec<u32> {
    let h = |v: f32| half::f16::from_f32(v).to_bits() as u32;
    data.chunks(2).map(|p| h(p[0]) | p.get(1).map_or(0, |&v| h(v)) << 16).collect()
}

/// Uploads `data` as packed f16 ([`pack_f16`]), padded with zeros to whole 8-byte
/// pairs (the kernels read `array<vec2<u32>>`); an empty tensor gets 16 zero bytes.
pub(crate) fn upload_f16(device: &wgpu::Device, label: &str, data: &[f32]) -> wgpu::Buffer {
    let mut packed = pack_f16(data);
    packed.resize(packed.len().next_multiple_of(2).max(4), 0);
    device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some(label),
        contents: bytemuck::cast_slice(&packed),
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
    use super::pack_f16;

    #[test]
    fn f16_packing_puts_the_first_value_in_the_low_half() {
        // 1.0 = 0x3c00, -2.0 = 0xc000, 65520 rounds to infinity (0x7c00), 0.1 = 0x2e66.
        assert_eq!(pack_f16(&[1.0, -2.0, 65520.0, 0.1, 1.0]), vec![0xc000_3c00, 0x2e66_7c00, 0x0000_3c00]);
        assert!(pack_f16(&[]).is_empty());
    }
}
