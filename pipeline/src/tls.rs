//! The TLS setup every HTTPS client of gma needs.

use std::sync::Once;

/// Installs rustls' aws-lc-rs provider as the process default, once: with both `ring` and
/// `aws-lc-rs` compiled in, rustls cannot choose one, and a client built for an https endpoint
/// panics (`docs/architecture.md#tls-crypto-provider`). Called by every client constructor and
/// first thing in `main`.
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    });
}
