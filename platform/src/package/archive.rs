//! Writing a package: a zip with fixed times and sorted names (the same input gives the same zip), or a
//! directory tree.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use zip::write::SimpleFileOptions;

use super::{Contents, Entry, Output, Packaged, Source};
use crate::PlatformError;

/// Writes the zip, `serverless.yml` and (for SCF) the folder, each to a temporary name first.
pub(super) fn write(
    out: &Output,
    mut contents: Contents,
    yml: String,
    runtime: String,
    notes: Vec<String>,
) -> Result<Packaged, PlatformError> {
    contents.entries.sort_by(|a, b| a.name.cmp(&b.name));
    let tmp = out.tmp(&out.file_name);
    write_zip(&tmp, &contents.entries)?;
    std::fs::rename(&tmp, &out.zip)
        .map_err(PlatformError::io(format!("writing {}", out.zip.display())))?;
    if let Some(src) = &out.src_dir {
        let name = src
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = out.tmp(&name);
        let _ = std::fs::remove_dir_all(&tmp);
        write_tree(&tmp, &contents.entries)?;
        if src.exists() {
            std::fs::remove_dir_all(src)
                .map_err(PlatformError::io(format!("replacing {}", src.display())))?;
        }
        std::fs::rename(&tmp, src)
            .map_err(PlatformError::io(format!("writing {}", src.display())))?;
    }
    std::fs::write(&out.yml, yml)
        .map_err(PlatformError::io(format!("writing {}", out.yml.display())))?;
    Ok(Packaged {
        zip: out.zip.clone(),
        files: contents.entries.len(),
        bytes: contents.bytes,
        runtime,
        serverless_yml: out.yml.clone(),
        src_dir: out.src_dir.clone(),
        notes,
    })
}

fn mode(e: &Entry) -> u32 {
    if e.executable { 0o755 } else { 0o644 }
}

fn write_zip(path: &Path, entries: &[Entry]) -> Result<(), PlatformError> {
    let io = PlatformError::io(format!("writing {}", path.display()));
    let zip_err = |e: zip::result::ZipError| {
        PlatformError::Config(format!("writing {}: {e}", path.display()))
    };
    let file = std::fs::File::create(path).map_err(io)?;
    let mut zip = zip::ZipWriter::new(std::io::BufWriter::new(file));
    let base = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    let mut dirs = BTreeSet::new();
    for e in entries {
        let mut parent = e.name.as_str();
        let mut missing = Vec::new();
        while let Some((p, _)) = parent.rsplit_once('/') {
            if dirs.insert(p.to_owned()) {
                missing.push(p.to_owned());
            }
            parent = p;
        }
        for d in missing.into_iter().rev() {
            zip.add_directory(format!("{d}/"), base.unix_permissions(0o755))
                .map_err(zip_err)?;
        }
        zip.start_file(e.name.as_str(), base.unix_permissions(mode(e)))
            .map_err(zip_err)?;
        match &e.source {
            Source::Text(t) => zip.write_all(t.as_bytes()),
            Source::File(p) => {
                std::fs::File::open(p).and_then(|mut f| std::io::copy(&mut f, &mut zip).map(|_| ()))
            }
        }
        .map_err(PlatformError::io(format!(
            "writing {} into {}",
            e.name,
            path.display()
        )))?;
    }
    let mut inner = zip.finish().map_err(zip_err)?;
    inner
        .flush()
        .map_err(PlatformError::io(format!("writing {}", path.display())))?;
    Ok(())
}

fn write_tree(dir: &Path, entries: &[Entry]) -> Result<(), PlatformError> {
    for e in entries {
        let dest = dir.join(&e.name);
        let io = PlatformError::io(format!("writing {}", dest.display()));
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)
                .map_err(PlatformError::io(format!("making {}", parent.display())))?;
        }
        match &e.source {
            Source::Text(t) => std::fs::write(&dest, t).map_err(io)?,
            Source::File(p) => {
                std::fs::copy(p, &dest).map_err(io)?;
            }
        }
        std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(mode(e)))
            .map_err(PlatformError::io(format!("writing {}", dest.display())))?;
    }
    Ok(())
}
