//! Probe tests: real files written by ffmpeg (from its built-in test source, so they are quick),
//! checked against ffprobe; truncated, corrupted and garbage inputs must never panic.

use super::*;
use std::path::PathBuf;
use std::process::Command;

/// Writes `secs` of 320x240@15 test video with the given output arguments; returns the path.
fn make(dir: &Path, name: &str, secs: f64, out_args: &[&str]) -> PathBuf {
    let path = dir.join(name);
    let st = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc=size=320x240:rate=15"])
        .args(["-t", &secs.to_string()])
        .args([
            "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-g", "15",
        ])
        .args(out_args)
        .arg(&path)
        .status()
        .expect("ffmpeg runs");
    assert!(st.success());
    path
}

/// ffprobe's container duration, if it gives one.
fn ffprobe(path: &Path) -> Option<f64> {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

const FMP4: &[&str] = &[
    "-f",
    "mp4",
    "-movflags",
    "+frag_keyframe+empty_moov+default_base_moof",
];

#[test]
fn fmp4_mp4_mkv_durations_match_ffprobe() {
    let d = tempfile::tempdir().unwrap();
    let cases = [
        (make(d.path(), "a.mp4", 3.0, FMP4), MediaKind::Fmp4, 3.0),
        (
            make(
                d.path(),
                "b.mp4",
                2.0,
                &["-f", "mp4", "-movflags", "+faststart"],
            ),
            MediaKind::Mp4,
            2.0,
        ),
        (
            make(d.path(), "c.mkv", 2.4, &["-f", "matroska"]),
            MediaKind::Mkv,
            2.4,
        ),
    ];
    for (path, kind, secs) in cases {
        let info = media_info(&path).expect("parsed");
        assert_eq!(info.kind, kind, "{path:?}");
        let got = info.duration_s.expect("duration");
        let want = ffprobe(&path).expect("ffprobe duration");
        assert!(
            (got - want).abs() < 0.05,
            "{path:?}: {got} vs ffprobe {want}"
        );
        assert!((got - secs).abs() < 0.1, "{path:?}: {got} vs {secs}");
    }
}

#[test]
fn truncated_fmp4_counts_complete_fragments_only() {
    let d = tempfile::tempdir().unwrap();
    let path = make(d.path(), "t.mp4", 4.0, FMP4);
    let full = media_info(&path).unwrap().duration_s.unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let cut = d.path().join("cut.mp4");
    std::fs::write(&cut, &bytes[..bytes.len() * 6 / 10]).unwrap();
    let info = media_info(&cut).unwrap();
    assert_eq!(info.kind, MediaKind::Fmp4);
    let part = info.duration_s.unwrap();
    assert!(part > 0.5 && part < full - 0.5, "{part} of {full}");
    // Whole seconds: the fragments are one GOP (15 frames) each.
    assert!((part - part.round()).abs() < 1e-6, "{part}");
}

#[test]
fn mkv_without_duration_is_approximated_from_the_last_cluster() {
    let d = tempfile::tempdir().unwrap();
    // Written to a pipe, ffmpeg cannot seek back to fill in Duration (as after a crash).
    let path = d.path().join("live.mkv");
    let out = std::fs::File::create(&path).unwrap();
    let st = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin"])
        .args([
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=160x120:rate=15",
            "-t",
            "2",
        ])
        .args([
            "-c:v", "libx264", "-preset", "veryfast", "-g", "15", "-f", "matroska", "pipe:1",
        ])
        .stdout(out)
        .status()
        .unwrap();
    assert!(st.success());
    let info = media_info(&path).unwrap();
    assert_eq!(info.kind, MediaKind::Mkv);
    let got = info.duration_s.expect("approximate duration");
    assert!((got - 2.0).abs() <= 0.1, "{got}");
}

#[test]
fn garbage_empty_and_mangled_files_never_panic() {
    let d = tempfile::tempdir().unwrap();
    let empty = d.path().join("empty.mp4");
    std::fs::write(&empty, b"").unwrap();
    assert_eq!(media_info(&empty), None);
    assert_eq!(media_info(&d.path().join("missing.mp4")), None);
    let garbage = d.path().join("garbage.mkv");
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let noise: Vec<u8> = (0..64 * 1024).map(|_| rnd() as u8).collect();
    std::fs::write(&garbage, &noise).unwrap();
    assert_eq!(media_info(&garbage), None);

    // Every prefix length (coarsely) and random byte flips of real files: any answer but a panic.
    let files = [
        make(d.path(), "f.mp4", 1.0, FMP4),
        make(d.path(), "p.mp4", 1.0, &["-f", "mp4"]),
        make(d.path(), "m.mkv", 1.0, &["-f", "matroska"]),
    ];
    let probe = d.path().join("probe.bin");
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        let step = (bytes.len() / 200).max(1);
        for n in (0..bytes.len()).step_by(step).chain([1, 7, 8, 9, 16, 31]) {
            std::fs::write(&probe, &bytes[..n.min(bytes.len())]).unwrap();
            let _ = media_info(&probe);
        }
        for _ in 0..200 {
            let mut b = bytes.clone();
            for _ in 0..8 {
                let i = (rnd() as usize) % b.len();
                b[i] = rnd() as u8;
            }
            std::fs::write(&probe, &b).unwrap();
            let _ = media_info(&probe);
        }
    }
    // Hostile headers: a huge box size, a zero-size box, a box size smaller than its header.
    for bytes in [
        &b"\x00\x00\x00\x01moov\xff\xff\xff\xff\xff\xff\xff\xff"[..],
        &b"\x00\x00\x00\x00moof"[..],
        &b"\x00\x00\x00\x04ftyp"[..],
        &b"\x1a\x45\xdf\xa3\x01\xff\xff\xff\xff\xff\xff\xff"[..],
        &b"\x1a\x45\xdf\xa3\x80\x18\x53\x80\x67\xff"[..],
    ] {
        std::fs::write(&probe, bytes).unwrap();
        let _ = media_info(&probe);
    }
}

#[test]
fn kinds_from_extensions() {
    assert_eq!(
        media_kind_from_ext(Path::new("a/b.MP4")),
        Some(MediaKind::Mp4)
    );
    assert_eq!(
        media_kind_from_ext(Path::new("x.mkv")),
        Some(MediaKind::Mkv)
    );
    assert_eq!(media_kind_from_ext(Path::new("x.jpg")), None);
    assert_eq!(media_kind_from_ext(Path::new("noext")), None);
    assert_eq!(MediaKind::Fmp4.as_str(), "fmp4");
}

#[test]
fn image_sizes_of_jpeg_and_png() {
    let rgb = vec![128u8; 64 * 48 * 3];
    let jpeg = crate::camera::jpeg::encode_rgb(64, 48, &rgb, 80).unwrap();
    assert_eq!(image_size(&jpeg), Some((64, 48)));
    assert_eq!(image_size(&jpeg[..jpeg.len().min(2048)]), Some((64, 48)));

    let mut png_bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut png_bytes, 33, 17);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header().unwrap();
        w.write_image_data(&vec![0u8; 33 * 17 * 3]).unwrap();
    }
    assert_eq!(image_size(&png_bytes[..24]), Some((33, 17)));

    // Truncations and garbage: None, never a panic.
    for n in 0..jpeg.len().min(700) {
        let _ = image_size(&jpeg[..n]);
    }
    for n in 0..24 {
        assert_eq!(image_size(&png_bytes[..n]), None);
    }
    assert_eq!(image_size(b""), None);
    assert_eq!(image_size(b"\xff\xd8\xff\xc0\x00\x01"), None);
    assert_eq!(image_size(&[0xFF; 100]), None);
}
