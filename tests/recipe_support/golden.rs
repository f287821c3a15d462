//! Golden files under `tests/golden/`: compared byte for byte; `STACKUP_BLESS=1` rewrites them.

#![allow(dead_code)]

use std::path::PathBuf;

/// The path of a golden file.
pub fn path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden").join(name)
}

/// Asserts `actual` equals the golden file `name` (rewrites it when `STACKUP_BLESS=1`).
pub fn check(name: &str, actual: &str) {
    let p = path(name);
    if std::env::var("STACKUP_BLESS").is_ok_and(|v| v == "1") {
        std::fs::write(&p, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e} (run with STACKUP_BLESS=1 to create it)", p.display()));
    assert_eq!(actual, expected, "{} differs (STACKUP_BLESS=1 rewrites it after review)", p.display());
}
