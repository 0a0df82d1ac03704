//! Image preprocessing equal to timm's eval transform:
//! decode -> RGB (or L) 8-bit -> resize (shorter side to floor(size / crop_pct),
//! PIL-compatible bicubic / bilinear with antialiasing, 8-bit rounding after
//! each pass) -> center crop -> [0, 1] -> normalize with mean / std.
//!
//! The resampler is a port of Pillow's `Resample.c` (fixed-point coefficients
//! with 22 fractional bits, horizontal pass then vertical pass), so PNG inputs
//! give the same tensor as `timm.data.create_transform` bit for bit. JPEG
//! decoders may differ from libjpeg by one level on some pixels.

use crate::error::{Error, Result};
use crate::models::common::DataConfig;
use std::io::Cursor;
use std::ops::Range;

/// An 8-bit image with 1 (L) or 3 (RGB) interleaved channels.
#[derive(Debug, Clone)]
pub struct Image8 {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Channels per pixel: 1 (L) or 3 (RGB).
    pub channels: usize,
    /// Row-major pixels, channels interleaved: `height * width * channels` bytes.
    pub data: Vec<u8>,
}

/// The most pixels an image may have to be decoded (2^25: 8K UHD, 7680 x 4320, fits; a
/// 16-bit RGBA image this size decodes into 256 MiB).
pub const MAX_DECODE_PIXELS: u64 = 1 << 25;
/// The most pixels the eval resize may produce before its crop (an extreme aspect ratio).
pub const MAX_RESIZE_PIXELS: usize = 1 << 27;

/// Decodes image bytes (PNG, JPEG, GIF, BMP, WebP, TIFF), applies the EXIF
/// orientation, and converts to `channels` (3: RGB, alpha dropped as PIL's
/// `convert('RGB')`; 1: PIL's `convert('L')`). 16-bit images are scaled to 8 bits.
pub fn decode(bytes: &[u8], origin: &str, channels: usize) -> Result<Image8> {
    decode_within(bytes, origin, channels, MAX_DECODE_PIXELS)
}

/// [`decode`] with another pixel limit (the fuzz harness's is lower: see `fuzz::image`).
pub(crate) fn decode_within(bytes: &[u8], origin: &str, channels: usize, max_pixels: u64) -> Result<Image8> {
    let bad = |e: image::ImageError| Error::Image { path: origin.to_string(), msg: e.to_string() };
    let reader = image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| Error::Image { path: origin.to_string(), msg: e.to_string() })?;
    if reader.format().is_none() {
        return Err(Error::Image { path: origin.to_string(), msg: "unknown image format".into() });
    }
    let mut decoder = reader.into_decoder().map_err(bad)?;
    // The header's size, before a byte is allocated for the pixels: a few hundred bytes
    // of PNG can claim 100000 x 100000.
    let (w, h) = image::ImageDecoder::dimensions(&decoder);
    if w as u64 * h as u64 > max_pixels {
        return Err(Error::Image {
            path: origin.to_string(),
            msg: format!("{w} x {h} pixels is too large (at most {} M pixels)", max_pixels >> 20),
        });
    }
    let orientation = image::ImageDecoder::orientation(&mut decoder).map_err(bad)?;
    let mut img = image::DynamicImage::from_decoder(decoder).map_err(bad)?;
    img.apply_orientation(orientation);
    let (w, h) = (img.width() as usize, img.height() as usize);
    if w == 0 || h == 0 {
        return Err(Error::Image { path: origin.to_string(), msg: "image is empty".into() });
    }
    // 8-bit gray and RGB need no conversion (the image crate's converts pixel by pixel
    // through its colour-layout cast: a quarter of a large image's decode time).
    let img = match img {
        image::DynamicImage::ImageLuma8(gray) => {
            let gray = gray.into_raw();
            let data = if channels == 1 { gray } else { gray.iter().flat_map(|&v| [v; 3]).collect() };
            return Ok(Image8 { width: w, height: h, channels, data });
        }
        image::DynamicImage::ImageRgb8(rgb) if channels == 3 => {
            return Ok(Image8 { width: w, height: h, channels, data: rgb.into_raw() });
        }
        other => other,
    };
    let gray_source = !img.color().has_color();
    let rgb = img.to_rgb8().into_raw();
    let data = if channels == 3 {
        rgb
    } else if gray_source {
        rgb.chunks_exact(3).map(|p| p[0]).collect()
    } else {
        rgb.chunks_exact(3).map(luma).collect()
    };
    Ok(Image8 { width: w, height: h, channels, data })
}

const PRECISION_BITS: u32 = 32 - 8 - 2;

fn bicubic(x: f64) -> f64 {
    let a = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * a
    } else {
        0.0
    }
}

fn bilinear(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 {
        1.0 - x
    } else {
        0.0
    }
}

/// Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc`: per output pixel,
/// the first input index, the tap count and fixed-point weights.
fn coeffs(in_size: usize, out_size: usize, filter: fn(f64) -> f64, support: f64) -> (Vec<(usize, usize)>, Vec<i32>, usize) {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = support * filterscale;
    let ksize = support.ceil() as usize * 2 + 1;
    let mut bounds = Vec::with_capacity(out_size);
    let mut kk = vec![0i32; out_size * ksize];
    let mut ws = Vec::with_capacity(ksize);
    for xx in 0..out_size {
        let center = (xx as f64 + 0.5) * scale;
        let ss = 1.0 / filterscale;
        let xmin = ((center - support + 0.5) as i64).max(0) as usize;
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
        let n = xmax.saturating_sub(xmin).min(ksize);
        ws.clear();
        ws.extend((0..n).map(|x| filter((x as f64 + xmin as f64 - center + 0.5) * ss)));
        let total: f64 = ws.iter().sum();
        for (x, w) in ws.iter().enumerate() {
            let w = if total != 0.0 { w / total } else { *w };
            let v = w * (1u32 << PRECISION_BITS) as f64;
            kk[xx * ksize + x] = if v < 0.0 { (v - 0.5) as i32 } else { (v + 0.5) as i32 };
        }
        bounds.push((xmin, n));
    }
    (bounds, kk, ksize)
}

fn clip8(v: i64) -> u8 {
    (v >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Resizes like PIL's `Image.resize(size, resample)` for 8-bit images.
pub fn resize(img: &Image8, out_w: usize, out_h: usize, interpolation: &str) -> Result<Image8> {
    resize_region(img, out_w, out_h, interpolation, 0..out_w, 0..out_h)
}

/// The columns `xs` and rows `ys` of [`resize`]`(img, out_w, out_h, interpolation)`,
/// computing only those pixels (and, as Pillow does, the horizontal pass only on the input
/// rows they read): the eval transform's center crop keeps a small part of a resize that an
/// extreme aspect ratio makes large.
pub fn resize_region(img: &Image8, out_w: usize, out_h: usize, interpolation: &str, xs: Range<usize>, ys: Range<usize>) -> Result<Image8> {
    let ch = img.channels;
    if xs.end > out_w || ys.end > out_h || xs.start > xs.end || ys.start > ys.end {
        return Err(Error::Internal(format!("resize region {xs:?} x {ys:?} outside {out_w} x {out_h}")));
    }
    let (w, h) = (xs.len(), ys.len());
    if interpolation == "nearest" {
        // PIL: affine transform sampling at pixel centers.
        let (sx, sy) = (img.width as f64 / out_w as f64, img.height as f64 / out_h as f64);
        let mut data = Vec::with_capacity(w * h * ch);
        for y in ys {
            let iy = (((y as f64 + 0.5) * sy) as usize).min(img.height - 1);
            for x in xs.clone() {
                let ix = (((x as f64 + 0.5) * sx) as usize).min(img.width - 1);
                data.extend_from_slice(&img.data[(iy * img.width + ix) * ch..][..ch]);
            }
        }
        return Ok(Image8 { width: w, height: h, channels: ch, data });
    }
    let (filter, support): (fn(f64) -> f64, f64) = match interpolation {
        "bicubic" => (bicubic, 2.0),
        "bilinear" => (bilinear, 1.0),
        other => return Err(Error::Unsupported(format!("interpolation {other:?} is not supported"))),
    };
    if !(1..=4).contains(&ch) {
        return Err(Error::Internal(format!("resize of a {ch}-channel image")));
    }
    // The vertical pass's taps first: they say which input rows the horizontal pass needs.
    let vertical = (out_h != img.height).then(|| coeffs(img.height, out_h, filter, support));
    let rows = match &vertical {
        Some((bounds, _, _)) => {
            let used = &bounds[ys.clone()];
            let first = used.iter().map(|&(m, _)| m).min().unwrap_or(0);
            first..used.iter().map(|&(m, n)| m + n).max().unwrap_or(first)
        }
        None => ys.clone(),
    };
    let row_len = img.width * ch;
    let mut horizontal = vec![0u8; w * rows.len() * ch];
    if out_w != img.width {
        let (bounds, kk, ksize) = coeffs(img.width, out_w, filter, support);
        for (ry, y) in rows.clone().enumerate() {
            let row = &img.data[y * row_len..(y + 1) * row_len];
            let out = &mut horizontal[ry * w * ch..(ry + 1) * w * ch];
            for (px, xx) in out.chunks_exact_mut(ch).zip(xs.clone()) {
                let (xmin, n) = bounds[xx];
                let taps = kk[xx * ksize..xx * ksize + n].iter().zip(row[xmin * ch..(xmin + n) * ch].chunks_exact(ch));
                // Every channel in one pass over the taps (ch is 1 or 3).
                let mut ss = [1i64 << (PRECISION_BITS - 1); 4];
                for (&kv, p) in taps {
                    for (s, &v) in ss.iter_mut().zip(p) {
                        *s += v as i64 * kv as i64;
                    }
                }
                for (o, &s) in px.iter_mut().zip(&ss) {
                    *o = clip8(s);
                }
            }
        }
    } else {
        for (ry, y) in rows.clone().enumerate() {
            horizontal[ry * w * ch..(ry + 1) * w * ch].copy_from_slice(&img.data[y * row_len + xs.start * ch..y * row_len + xs.end * ch]);
        }
    }
    let Some((bounds, kk, ksize)) = vertical else {
        return Ok(Image8 { width: w, height: h, channels: ch, data: horizontal });
    };
    // Whole rows at a time: each tap adds a weighted input row to an accumulator row.
    let stride = w * ch;
    let mut data = vec![0u8; w * h * ch];
    let mut acc = vec![0i64; stride];
    for (out, yy) in data.chunks_exact_mut(stride.max(1)).zip(ys) {
        let (ymin, n) = bounds[yy];
        acc.fill(1 << (PRECISION_BITS - 1));
        let first = (ymin - rows.start) * stride;
        for (&kv, src) in kk[yy * ksize..yy * ksize + n].iter().zip(horizontal[first..first + n * stride].chunks_exact(stride.max(1))) {
            for (a, &v) in acc.iter_mut().zip(src) {
                *a += v as i64 * kv as i64;
            }
        }
        for (o, &a) in out.iter_mut().zip(&acc) {
            *o = clip8(a);
        }
    }
    Ok(Image8 { width: w, height: h, channels: ch, data })
}

/// Python's `round()` of `v / 2` for an integer v (round half to even).
fn half_round_even(v: i64) -> i64 {
    let q = v.div_euclid(2);
    if v.rem_euclid(2) == 0 || q % 2 == 0 {
        q
    } else {
        q + 1
    }
}

/// The size torchvision's `Resize(size)` gives for an int size (shorter side).
fn shorter_side(w: usize, h: usize, size: usize) -> (usize, usize) {
    if w <= h {
        (size, (size as f64 * h as f64 / w as f64) as usize)
    } else {
        ((size as f64 * w as f64 / h as f64) as usize, size)
    }
}

/// timm's eval transform: image -> CHW f32 tensor of `cfg.input_size`.
pub fn transform(img: &Image8, cfg: &DataConfig) -> Result<Vec<f32>> {
    Ok(normalize(&eval_image(img, cfg)?, cfg))
}

/// The geometric part of the eval transform: resize (shorter side to
/// `size / crop_pct`; for a non-square size, the smallest scale covering
/// `size / crop_pct`, as timm's ResizeKeepRatio) and center crop (zero padding
/// where the crop is larger).
pub fn eval_image(img: &Image8, cfg: &DataConfig) -> Result<Image8> {
    let [c, th, tw] = cfg.input_size;
    if img.channels != c {
        return Err(Error::Input(format!("image has {} channels, model expects {c}", img.channels)));
    }
    let sh = (th as f64 / cfg.crop_pct).floor() as usize;
    let sw = (tw as f64 / cfg.crop_pct).floor() as usize;
    let (rw, rh) = match () {
        _ if cfg.crop_mode != "center" => (sw, sh),
        _ if sh == sw => shorter_side(img.width, img.height, sh),
        // timm's ResizeKeepRatio (longest = 0): scale so the image just covers the target.
        _ => {
            let ratio = (img.height as f64 / sh as f64).min(img.width as f64 / sw as f64);
            let side = |x: usize| (x as f64 / ratio).round_ties_even() as usize;
            (side(img.width), side(img.height))
        }
    };
    if rw.checked_mul(rh).is_none_or(|n| n > MAX_RESIZE_PIXELS) {
        return Err(Error::Input(format!(
            "a {} x {} image resized for the model's {th} x {tw} input would be {rw} x {rh} pixels (at most {} M): crop it closer to square first",
            img.width,
            img.height,
            MAX_RESIZE_PIXELS >> 20
        )));
    }
    // torchvision CenterCrop: pad with zeros when the crop is larger, then crop.
    let (pad_l, pad_t) = ((tw.saturating_sub(rw)) / 2, (th.saturating_sub(rh)) / 2);
    let (pw, ph) = (rw.max(tw), rh.max(th));
    let top = half_round_even(ph as i64 - th as i64) - pad_t as i64;
    let left = half_round_even(pw as i64 - tw as i64) - pad_l as i64;
    if (rw, rh) == (img.width, img.height) {
        return Ok(crop(img, left, top, tw, th));
    }
    // Only the part of the resized image the crop keeps is computed.
    let (fw, fh) = (rw.max(1), rh.max(1));
    let span =
        |start: i64, len: usize, size: usize| start.clamp(0, size as i64) as usize..(start + len as i64).clamp(0, size as i64) as usize;
    let (xs, ys) = (span(left, tw, fw), span(top, th, fh));
    let (x0, y0) = (xs.start as i64, ys.start as i64);
    let part = resize_region(img, fw, fh, &cfg.interpolation, xs, ys)?;
    Ok(crop(&part, left - x0, top - y0, tw, th))
}

/// A `w x h` window of `img` at (`left`, `top`); pixels outside are zero.
pub fn crop(img: &Image8, left: i64, top: i64, w: usize, h: usize) -> Image8 {
    let c = img.channels;
    let mut data = vec![0u8; w * h * c];
    for y in 0..h {
        let py = y as i64 + top;
        if py < 0 || py as usize >= img.height {
            continue;
        }
        for x in 0..w {
            let px = x as i64 + left;
            if px < 0 || px as usize >= img.width {
                continue;
            }
            let src = (py as usize * img.width + px as usize) * c;
            data[(y * w + x) * c..(y * w + x + 1) * c].copy_from_slice(&img.data[src..src + c]);
        }
    }
    Image8 { width: w, height: h, channels: c, data }
}

/// Mirrors an image left to right.
pub fn hflip(img: &Image8) -> Image8 {
    let c = img.channels;
    let mut data = Vec::with_capacity(img.data.len());
    for row in img.data.chunks_exact(img.width * c) {
        for px in row.chunks_exact(c).rev() {
            data.extend_from_slice(px);
        }
    }
    Image8 { data, ..img.clone() }
}

/// Converts between 1 (L) and 3 (RGB) channels as PIL's `convert` does.
pub fn to_channels(img: Image8, channels: usize) -> Image8 {
    match (img.channels, channels) {
        (1, 3) => Image8 { channels: 3, data: img.data.iter().flat_map(|&v| [v, v, v]).collect(), ..img },
        (3, 1) => Image8 { channels: 1, data: img.data.chunks_exact(3).map(luma).collect(), ..img },
        _ => img,
    }
}

/// PIL's RGB -> L: ITU-R 601-2 luma in 16-bit fixed point.
fn luma(p: &[u8]) -> u8 {
    ((p[0] as u32 * 19595 + p[1] as u32 * 38470 + p[2] as u32 * 7471 + 0x8000) >> 16) as u8
}

/// HWC 8-bit -> CHW f32 in [0, 1], normalized with the config's mean / std.
pub fn normalize(img: &Image8, cfg: &DataConfig) -> Vec<f32> {
    let (c, h, w) = (img.channels, img.height, img.width);
    let mut out = vec![0f32; c * h * w];
    for (i, px) in img.data.chunks_exact(c).enumerate() {
        for (ch, &v) in px.iter().enumerate() {
            out[ch * h * w + i] = (v as f32 / 255.0 - cfg.mean[ch]) / cfg.std[ch];
        }
    }
    out
}

/// Decodes and transforms one image file's bytes.
pub fn load_tensor(bytes: &[u8], origin: &str, cfg: &DataConfig) -> Result<Vec<f32>> {
    transform(&decode(bytes, origin, cfg.input_size[0])?, cfg)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn python_round_half_even() {
        assert_eq!(half_round_even(1), 0); // round(0.5) == 0
        assert_eq!(half_round_even(3), 2); // round(1.5) == 2
        assert_eq!(half_round_even(5), 2); // round(2.5) == 2
        assert_eq!(half_round_even(32), 16);
    }
    #[test]
    fn identity_resize_keeps_pixels() -> crate::Result<()> {
        let img = Image8 { width: 3, height: 2, channels: 1, data: vec![0, 50, 255, 7, 8, 9] };
        let r = resize(&img, 3, 2, "bicubic")?;
        assert_eq!(r.data, img.data);
        Ok(())
    }
}
