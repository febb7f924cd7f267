//! Processes one original into its three WebP variants and writes them to a folder, for
//! `bench/images.sh` and for looking at the results:
//!
//! ```text
//! cargo run --release -p matsuri-imaging --example variants -- PHOTO.jpg OUT_DIR
//! ```
//!
//! The format claimed is the one the magic bytes say, so every guard but the mismatch runs.
//! Prints one line per variant (name, size, bytes) and the original's displayed size.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(input), Some(out_dir)) = (args.next(), args.next()) else {
        eprintln!("usage: variants INPUT OUT_DIR");
        return ExitCode::from(2);
    };
    let bytes = match std::fs::read(&input) {
        Ok(bytes) => bytes,
        Err(error) => {
            eprintln!("cannot read {}: {error}", PathBuf::from(&input).display());
            return ExitCode::FAILURE;
        }
    };
    let Some(format) = matsuri_imaging::sniff(&bytes) else {
        eprintln!("not_an_image: not a JPEG, PNG or WebP file");
        return ExitCode::FAILURE;
    };
    let processed = match matsuri_imaging::process(&bytes, format) {
        Ok(processed) => processed,
        Err(failure) => {
            eprintln!("{}: {failure}", failure.reason());
            return ExitCode::FAILURE;
        }
    };
    let out_dir = PathBuf::from(out_dir);
    if let Err(error) = std::fs::create_dir_all(&out_dir) {
        eprintln!("cannot create {}: {error}", out_dir.display());
        return ExitCode::FAILURE;
    }
    println!(
        "{} {}x{} taken_at={:?}",
        processed.format.as_str(),
        processed.width,
        processed.height,
        processed.taken_at
    );
    for variant in &processed.variants {
        let path = out_dir.join(format!("{}.webp", variant.name));
        if let Err(error) = std::fs::write(&path, &variant.webp) {
            eprintln!("cannot write {}: {error}", path.display());
            return ExitCode::FAILURE;
        }
        println!(
            "{} {}x{} {} bytes",
            variant.name,
            variant.width,
            variant.height,
            variant.webp.len()
        );
    }
    ExitCode::SUCCESS
}
