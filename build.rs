//! Embeds the templates and static files in the binary, and makes Cargo rebuild when they or the
//! migrations change.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, out);
        } else if path.is_file() {
            out.push(path);
        }
    }
    out.sort();
}

fn embed(name: &str, out: &mut String) {
    let root =
        Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR")).join(name);
    println!("cargo:rerun-if-changed={name}");
    let mut found = Vec::new();
    files(&root, &mut found);
    let _ = writeln!(
        out,
        "/// The files under `{name}/`, by path relative to it."
    );
    let _ = writeln!(
        out,
        "pub static {}: &[(&str, &[u8])] = &[",
        name.to_uppercase()
    );
    for path in found {
        let relative = path
            .strip_prefix(&root)
            .expect("under root")
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/");
        let _ = writeln!(
            out,
            "    ({relative:?}, include_bytes!({:?})),",
            path.display().to_string()
        );
    }
    let _ = writeln!(out, "];");
}

fn main() {
    println!("cargo:rerun-if-changed=migrations");
    let mut out = String::new();
    embed("templates", &mut out);
    embed("static", &mut out);
    let target = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("embedded.rs");
    std::fs::write(target, out).expect("write embedded.rs");
}
