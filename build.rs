fn main() {
    napi_build::setup();
    // The source id (scripts/source-id.js) goes into the binary: the release spec checks that a
    // shipped binary was built from the checkout it ships from. A new id also recompiles the crate
    // when file times alone would not (cargo target folders shared by checkouts, scripts/cache.sh).
    println!("cargo:rerun-if-env-changed=LCBA_SOURCE_ID");
    let id = std::env::var("LCBA_SOURCE_ID")
        .ok()
        .filter(|id| id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=LCBA_SOURCE_ID={id}");
}
