//! `GET`/`HEAD /files/{path}`: the curated files behind local signed URLs.
//!
//! A request is answered only if all of these hold, checked in this order:
//! 1. the path is a relative path of plain segments (`[A-Za-z0-9._=-]`, not starting with
//!    `.`): no `..`, no encoded separators or dots (axum decodes before we look), no
//!    absolute or empty segments;
//! 2. the signature covers this path, expiry and key id, and the expiry is in the future
//!    (both computed before either decides, the signature compared in constant time);
//! 3. no component of the path below the curated root is a symbolic link, and the end is
//!    a regular file.
//!
//! The file is then served by tower-http's `ServeFile` (`HEAD`, `Range` → 206,
//! conditional requests).

use std::path::{Path, PathBuf};

use axum::http::StatusCode;

use crate::error::{ApiError, ApiResult};
use crate::secrets::UrlKeys;

/// Whether `segment` may appear in a served path.
fn plain_segment(segment: &str) -> bool {
    !segment.is_empty()
        && !segment.starts_with('.')
        && segment.len() <= 255
        && segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'='))
}

/// Check 1: the path's shape.
pub(crate) fn check_shape(path: &str) -> ApiResult<()> {
    if path.split('/').all(plain_segment) {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "invalid_path",
            "the path is not a curated file path",
        ))
    }
}

/// Check 2: the signature and expiry.
pub(crate) fn check_signature(
    keys: &UrlKeys,
    path: &str,
    exp: i64,
    kid: &str,
    sig: &str,
    now: i64,
) -> ApiResult<()> {
    let signed = keys.verify(kid, path, exp, sig);
    let fresh = now < exp;
    match (signed, fresh) {
        (false, _) => Err(ApiError::forbidden(
            "signature_invalid",
            "the URL's signature does not match",
        )),
        (true, false) => Err(ApiError::forbidden("url_expired", "the URL has expired")),
        (true, true) => Ok(()),
    }
}

/// Check 3: walks `path` below `root` refusing symbolic links; returns the file.
pub(crate) fn resolve(root: &Path, path: &str) -> ApiResult<PathBuf> {
    let mut at = root.to_path_buf();
    let segments: Vec<&str> = path.split('/').collect();
    for (i, segment) in segments.iter().enumerate() {
        at.push(segment);
        let meta = match std::fs::symlink_metadata(&at) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ApiError::not_found("file_not_found", "no such file"));
            }
            Err(e) => return Err(ApiError::internal(&e)),
        };
        let last = i + 1 == segments.len();
        let ok = if meta.file_type().is_symlink() {
            false
        } else if last {
            meta.is_file()
        } else {
            meta.is_dir()
        };
        if !ok {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "path_refused",
                "the path does not name a curated file",
            ));
        }
    }
    Ok(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_paths_pass() {
        for ok in [
            "dataset=a/tenant=t-1/dt=2026-11-24/release=r-1/part-00000.parquet",
            "a",
        ] {
            assert!(check_shape(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "..",
            "a/../b",
            "a/./b",
            "a//b",
            ".hidden",
            "a/%2e%2e/b",
            "a\\..\\b",
            "a/b/",
            "dataset=a/..%2f..",
            "C:/x",
            "a\0b",
        ] {
            let err = check_shape(bad).expect_err(bad);
            assert_eq!(
                (err.status, err.code),
                (StatusCode::BAD_REQUEST, "invalid_path"),
                "{bad}"
            );
        }
    }

    #[test]
    fn symlinks_and_folders_are_refused() {
        let root = tempfile::tempdir().expect("tempdir");
        let outside = tempfile::tempdir().expect("outside");
        std::fs::write(outside.path().join("secret"), "x").expect("secret");
        std::fs::create_dir(root.path().join("d")).expect("dir");
        std::fs::write(root.path().join("d/f.parquet"), "p").expect("file");
        std::os::unix::fs::symlink(outside.path().join("secret"), root.path().join("d/link"))
            .expect("link");
        std::os::unix::fs::symlink(outside.path(), root.path().join("out")).expect("dir link");
        assert_eq!(
            resolve(root.path(), "d/f.parquet").expect("file"),
            root.path().join("d/f.parquet")
        );
        for (path, code) in [
            ("d/link", "path_refused"),
            ("out/secret", "path_refused"),
            ("d", "path_refused"),
            ("d/none", "file_not_found"),
        ] {
            assert_eq!(
                resolve(root.path(), path).expect_err(path).code,
                code,
                "{path}"
            );
        }
    }

    #[test]
    fn signature_then_expiry() {
        let keys = UrlKeys::parse("k1:first-secret-first-secret-first-secret").expect("keys");
        let (kid, sig) = keys.sign("a/b", 100);
        assert!(check_signature(&keys, "a/b", 100, &kid, &sig, 99).is_ok());
        assert_eq!(
            check_signature(&keys, "a/b", 100, &kid, &sig, 100)
                .expect_err("expired")
                .code,
            "url_expired"
        );
        assert_eq!(
            check_signature(&keys, "a/c", 100, &kid, &sig, 99)
                .expect_err("other file")
                .code,
            "signature_invalid"
        );
        assert_eq!(
            check_signature(&keys, "a/b", 200, &kid, &sig, 99)
                .expect_err("longer")
                .code,
            "signature_invalid"
        );
    }
}
