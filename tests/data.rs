//! Data loading: IDX (plain and gzipped, and the real Fashion-MNIST files the
//! Debian package ships), CIFAR binary batches, ImageFolder, seeded shuffles.

use std::io::Write;
use std::path::{Path, PathBuf};
use vitrine::train::data::{Dataset, Source, Split, FASHION_MNIST};

fn tmp(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("data").join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 8, dims.len() as u8];
    for d in dims {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v.extend_from_slice(data);
    v
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

#[test]
fn idx_plain_and_gzipped() {
    let d = tmp("digits");
    let pixels: Vec<u8> = (0..3 * 2 * 4).map(|i| i as u8).collect();
    std::fs::write(d.join("train-images-idx3-ubyte"), idx(&[3, 2, 4], &pixels)).unwrap();
    std::fs::write(d.join("train-labels-idx1-ubyte.gz"), gz(&idx(&[3], &[7, 0, 9]))).unwrap();
    std::fs::write(d.join("t10k-images-idx3-ubyte.gz"), gz(&idx(&[1, 2, 4], &[5; 8]))).unwrap();
    std::fs::write(d.join("t10k-labels-idx1-ubyte"), idx(&[1], &[3])).unwrap();
    let train = Dataset::open(&d, Split::Train).unwrap();
    assert_eq!(train.len(), 3);
    assert_eq!(train.classes[9], "9");
    assert_eq!(train.samples.iter().map(|s| s.label).collect::<Vec<_>>(), vec![7, 0, 9]);
    match &train.samples[1].source {
        Source::Pixels(img) => {
            assert_eq!((img.width, img.height, img.channels), (4, 2, 1));
            assert_eq!(img.data, (8..16).collect::<Vec<u8>>());
        }
        other => panic!("expected pixels, got {other:?}"),
    }
    let test = Dataset::open(&d, Split::Val).unwrap();
    assert_eq!((test.len(), test.samples[0].label), (1, 3));
    // A label file that disagrees with the images is an error, not a silent truncation.
    std::fs::write(d.join("t10k-labels-idx1-ubyte"), idx(&[2], &[3, 3])).unwrap();
    let e = Dataset::open(&d, Split::Val).unwrap_err().to_string();
    assert!(e.contains("labels for 1 images"), "{e}");
    std::fs::write(d.join("t10k-labels-idx1-ubyte"), b"garbage!").unwrap();
    assert!(Dataset::open(&d, Split::Val).unwrap_err().to_string().contains("not an IDX file"));
}

#[test]
fn fashion_mnist_as_debian_ships_it() {
    // Installed by scripts/deps.sh (package dataset-fashion-mnist); the test fails without it.
    let d = Path::new("/usr/share/datasets/fashion-mnist");
    assert!(d.is_dir(), "{} missing: apt-get install dataset-fashion-mnist (scripts/test.sh does)", d.display());
    let train = Dataset::open(d, Split::Train).unwrap();
    let test = Dataset::open(d, Split::Val).unwrap();
    assert_eq!((train.len(), test.len()), (60000, 10000));
    assert_eq!(train.classes, FASHION_MNIST.to_vec());
    assert_eq!(train.class_counts(), vec![6000; 10]);
    assert_eq!(test.class_counts(), vec![1000; 10]);
    let Source::Pixels(img) = &train.samples[0].source else { panic!("pixels expected") };
    assert_eq!((img.width, img.height, img.channels), (28, 28, 1));
    assert_eq!(train.samples[0].label, 9, "the first training sample is an ankle boot");
}

#[test]
fn cifar10_binary_batches() {
    let d = tmp("cifar10");
    for (i, name) in ["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"]
        .iter()
        .enumerate()
    {
        let mut rec = vec![(i % 10) as u8];
        rec.extend((0..3072).map(|p| (p / 1024) as u8 * 100)); // R plane 0, G 100, B 200
        std::fs::write(d.join(name), rec.repeat(2)).unwrap();
    }
    let train = Dataset::open(&d, Split::Train).unwrap();
    assert_eq!(train.len(), 10);
    let Source::Pixels(img) = &train.samples[0].source else { panic!() };
    assert_eq!(&img.data[..6], &[0, 100, 200, 0, 100, 200], "planar RGB must become interleaved");
    assert_eq!(Dataset::open(&d, Split::Val).unwrap().samples[0].label, 5);
    std::fs::write(d.join("test_batch.bin"), [0u8; 100]).unwrap();
    assert!(Dataset::open(&d, Split::Val).is_err());
}

#[test]
fn image_folder_sorted_classes_and_seeded_shuffle() {
    let d = tmp("folder");
    for (c, n) in [("zebra", 3), ("ant", 2), ("moth", 4)] {
        std::fs::create_dir_all(d.join("train").join(c)).unwrap();
        for i in 0..n {
            image::RgbImage::new(5, 4).save(d.join("train").join(c).join(format!("{i}.png"))).unwrap();
        }
        std::fs::write(d.join("train").join(c).join("notes.txt"), "not an image").unwrap();
    }
    let mut ds = Dataset::open(&d, Split::Train).unwrap();
    assert_eq!(ds.classes, vec!["ant", "moth", "zebra"]);
    assert_eq!(ds.class_counts(), vec![2, 4, 3]);
    assert!(Dataset::open(&d, Split::Val).is_err(), "no val/ folder must be an error");
    let mut again = ds.clone();
    ds.shuffle(42);
    again.shuffle(42);
    let order = |x: &Dataset| x.samples.iter().map(|s| format!("{:?}", s.source)).collect::<Vec<_>>();
    assert_eq!(order(&ds), order(&again), "same seed, same order");
    again.shuffle(43);
    assert_ne!(order(&ds), order(&again));
    let val = ds.split_off(0.25, 1);
    assert_eq!((ds.len(), val.len()), (7, 2));
}
