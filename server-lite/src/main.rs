//! `server-lite`: starts a pod and prints where to reach it.

use clap::Parser;
use server_lite::Config;
use tracing_subscriber::EnvFilter;

// One runtime thread here; `start` adds one event loop per further core (see its doc).
#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("SHOAL_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let config = Config::parse();
    match run(config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("server-lite: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    let token_from_env = config.admin_token.is_some();
    let demo = config.demo;
    let pod = server_lite::start(config).await?;
    let url = pod.pod.public_url().to_owned();
    // The README's run command and the tests read these lines.
    println!("Shoal pod running at {url}/");
    if demo {
        let newest = pod
            .pod
            .db()
            .call(|c| {
                server_lite::videos::list(
                    c,
                    0,
                    1,
                    server_lite::videos::Sort::Oldest,
                    Default::default(),
                )
            })
            .await?;
        if let Some(video) = newest.1.first() {
            println!("Watch \"{}\" at {url}/w/{}", video.name, video.uuid);
        }
    }
    if token_from_env {
        println!("Admin token: the one in SHOAL_ADMIN_TOKEN");
    } else {
        println!(
            "Admin token (for uploads): {}",
            pod.pod.config().data_dir.join("admin-token").display()
        );
    }
    shutdown_signal().await;
    tracing::info!("shutting down");
    pod.stop().await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
