//! The signals that stop gma: SIGTERM (Cloud Run, systemd, kill) and SIGINT (Ctrl-C).

use tokio_util::sync::CancellationToken;

/// Completes on SIGTERM (Cloud Run, systemd, kill) or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

/// A token cancelled at the first SIGTERM or SIGINT, after logging `what_happens` as a warning;
/// abort the returned task once the run is over.
pub fn cancel_on_signal(
    what_happens: &'static str,
) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let token = CancellationToken::new();
    let on_signal = token.clone();
    let task = tokio::spawn(async move {
        shutdown_signal().await;
        tracing::warn!("{what_happens}");
        on_signal.cancel();
    });
    (token, task)
}
