//! The runtime layout: where `scf-shim` finds its language pieces, relative to its own binary.
//!
//! One rule for every language, so that an installed tree and a dev checkout both work from any directory
//! with nothing set in the environment:
//!
//! 1. **Installed** (the release tarball, `docs/install.md`): `<prefix>/bin/scf-shim` finds
//!    `<prefix>/lib/scf-runtime/<piece>/` ([`LAYOUT_DIR`], then [`Piece::name`]).
//! 2. **Dev checkout**: `<checkout>/target/<profile>/scf-shim` (or `target/<triple>/<profile>/`) finds the
//!    piece's folder in the checkout ([`Piece::checkout_dir`]).
//!
//! A candidate counts only when the piece's marker file is in it ([`Piece::marker`]). The shim's path is
//! the resolved one (`/proc/self/exe`), so a symbolic link to `scf-shim` from elsewhere on `PATH` works.
//! The function's own copy of an SDK (vendored into the code directory) is not this module's business: each
//! host puts it first (see [`super::python`] and [`super::node`]).

use std::path::{Path, PathBuf};

/// Where the language pieces sit under the installation prefix.
pub const LAYOUT_DIR: &str = "lib/scf-runtime";

/// A language piece of the runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece {
    /// The Python SDK's package folder (holds `scf_sdk/` with its native core): goes on `sys.path`.
    Python,
    /// The Node SDK's package folder (holds `bootstrap.js` and the add-on).
    Node,
}

impl Piece {
    /// The folder's name under [`LAYOUT_DIR`].
    pub fn name(self) -> &'static str {
        match self {
            Piece::Python => "python",
            Piece::Node => "node",
        }
    }

    /// The same folder in a checkout of the repository.
    pub fn checkout_dir(self) -> &'static str {
        match self {
            Piece::Python => "sdk-python/python",
            Piece::Node => "sdk-node",
        }
    }

    /// A file that must be inside the folder for it to count.
    pub fn marker(self) -> &'static str {
        match self {
            Piece::Python => "scf_sdk/__init__.py",
            Piece::Node => "bootstrap.js",
        }
    }
}

/// A piece that is in none of the places looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotFound {
    /// The piece looked for.
    pub piece: Piece,
    /// The folders tried, in order.
    pub tried: Vec<PathBuf>,
}

impl std::fmt::Display for NotFound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tried: Vec<String> = self.tried.iter().map(|p| p.display().to_string()).collect();
        if self.tried.is_empty() {
            return write!(
                f,
                "{} not looked for: the shim's own path is unknown",
                self.piece.marker()
            );
        }
        write!(
            f,
            "{} is in none of: {}",
            self.piece.marker(),
            tried.join(", ")
        )
    }
}

/// The folders where `piece` may be for a shim at `exe`, in the order they are tried.
pub fn candidates(piece: Piece, exe: &Path) -> Vec<PathBuf> {
    let Some(bin) = exe.parent() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let Some(prefix) = bin.parent() {
        out.push(prefix.join(LAYOUT_DIR).join(piece.name()));
    }
    // target/<profile>/scf-shim, then target/<triple>/<profile>/scf-shim.
    for up in [2, 3] {
        if let Some(checkout) = bin.ancestors().nth(up) {
            out.push(checkout.join(piece.checkout_dir()));
        }
    }
    out
}

/// The first folder of [`candidates`] that holds the piece's marker.
pub fn locate(piece: Piece, exe: Option<&Path>) -> Result<PathBuf, NotFound> {
    let tried = exe.map(|e| candidates(piece, e)).unwrap_or_default();
    match tried.iter().find(|d| d.join(piece.marker()).is_file()) {
        Some(found) => Ok(found.clone()),
        None => Err(NotFound { piece, tried }),
    }
}

/// [`locate`] for the running shim.
pub fn locate_here(piece: Piece) -> Result<PathBuf, NotFound> {
    locate(piece, std::env::current_exe().ok().as_deref())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    fn tree(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("scf-layout-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn touch(p: &Path) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, "").unwrap();
    }

    #[test]
    fn installed_prefix_wins_over_a_checkout() {
        let d = tree("installed");
        let exe = d.join("target/debug/bin/scf-shim");
        touch(&d.join("target/debug/lib/scf-runtime/python/scf_sdk/__init__.py"));
        touch(&d.join("target/sdk-python/python/scf_sdk/__init__.py"));
        assert_eq!(
            locate(Piece::Python, Some(&exe)).unwrap(),
            d.join("target/debug/lib/scf-runtime/python")
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn checkout_layouts_for_both_pieces() {
        let d = tree("checkout");
        touch(&d.join("sdk-python/python/scf_sdk/__init__.py"));
        touch(&d.join("sdk-node/bootstrap.js"));
        for exe in [
            d.join("target/debug/scf-shim"),
            d.join("target/x86_64-unknown-linux-gnu/release/scf-shim"),
        ] {
            assert_eq!(
                locate(Piece::Python, Some(&exe)).unwrap(),
                d.join("sdk-python/python")
            );
            assert_eq!(locate(Piece::Node, Some(&exe)).unwrap(), d.join("sdk-node"));
        }
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_folder_without_its_marker_does_not_count_and_the_error_lists_the_places() {
        let d = tree("empty");
        std::fs::create_dir_all(d.join("lib/scf-runtime/node")).unwrap();
        let err = locate(Piece::Node, Some(&d.join("bin/scf-shim"))).unwrap_err();
        assert_eq!(err.tried[0], d.join("lib/scf-runtime/node"));
        let text = err.to_string();
        assert!(text.contains("bootstrap.js"), "{text}");
        assert!(
            text.contains(&d.join("lib/scf-runtime/node").display().to_string()),
            "{text}"
        );
        std::fs::remove_dir_all(&d).unwrap();
        let none = locate(Piece::Python, None).unwrap_err();
        assert!(none.tried.is_empty() && none.to_string().contains("unknown"));
        assert!(text.starts_with("bootstrap.js is in none of: "), "{text}");
    }
}
