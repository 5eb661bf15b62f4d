//! The demo clip: a new pod (empty index, started with `--demo`, as the README's run command
//! does) generates a short test-pattern video with ffmpeg and publishes it, so that a newcomer
//! sees playback at once. Failures only log: a pod without ffmpeg starts all the same.

use crate::upload::{self, Details};
use crate::Pod;

pub async fn add_if_empty(pod: &Pod) {
    if !pod.catalogue().is_empty() {
        return;
    }
    if !crate::media::ffmpeg_available().await {
        tracing::warn!("no demo video: ffmpeg is not installed");
        return;
    }
    let dir = pod.config().data_dir.join(upload::TMP_DIR);
    let source = dir.join("demo-source.mp4");
    if let Err(e) = crate::media::generate_demo(&source, 20).await {
        tracing::warn!(%e, "no demo video: ffmpeg failed");
        return;
    }
    let details = Details {
        name: Some("Welcome to Shoal".into()),
        description: "A test pattern with a tone, made by this pod when it first started. \
                      Open this page in a second browser window to watch it come from peers."
            .into(),
        tags: vec!["demo".into(), "shoal".into()],
    };
    match upload::add_local_file(pod, &source, details).await {
        Ok(video) => tracing::info!(uuid = %video.uuid, "demo video added"),
        Err(e) => tracing::warn!(message = %e.message, "no demo video"),
    }
    let _ = tokio::fs::remove_file(&source).await;
}
