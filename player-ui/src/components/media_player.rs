//! The player: a `<video>` (or `<audio>`) with the browser's own controls, fed by client-core
//! from peers and the pod's WebSeed. Switching P2P restarts the stream where the viewer was.

use std::time::Duration;

use leptos::html;
use leptos::prelude::*;
use wasm_bindgen_futures::spawn_local;
use web_sys::HtmlMediaElement;

use crate::api::{self, Video};
use crate::stream::{Snapshot, Stream};

/// How often the P2P numbers refresh.
const STATS_EVERY: Duration = Duration::from_millis(1000);

/// Choices the embedding page (or the watch page) makes.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PlayerOptions {
    pub autoplay: bool,
    pub muted: bool,
    /// Seconds to start at.
    pub start: f64,
}

#[component]
pub fn MediaPlayer(
    video: Video,
    #[prop(into)] p2p: Signal<bool>,
    /// Filled with the stream's numbers every second.
    stats: RwSignal<Option<Snapshot>>,
    options: PlayerOptions,
) -> impl IntoView {
    let video_ref = NodeRef::<html::Video>::new();
    let audio_ref = NodeRef::<html::Audio>::new();
    let error = RwSignal::new(None::<String>);
    let stream = StoredValue::new_local(None::<Stream>);
    // Every stream plays in an element of its own (see `Stream`): switching P2P remounts it.
    let mounts = RwSignal::new(0u64);
    // Where the next element starts, and whether it plays at once.
    let resume = StoredValue::new((options.start, options.autoplay));
    let view_counted = StoredValue::new(false);
    let item = StoredValue::new(video.clone());

    let element = move || -> Option<HtmlMediaElement> {
        video_ref
            .get()
            .map(Into::into)
            .or_else(|| audio_ref.get().map(Into::into))
    };

    // The P2P switch: remember where the viewer is, then swap in a fresh element.
    Effect::watch(
        move || p2p.get(),
        move |_, _, _| {
            if let Some(old) = element() {
                resume.set_value((old.current_time(), options.autoplay || !old.paused()));
            }
            mounts.update(|n| *n += 1);
        },
        false,
    );

    // Each element that mounts gets its stream; the previous stream goes.
    Effect::new(move |_| {
        let Some(element) = element() else { return };
        let mount = mounts.get_untracked();
        let p2p = p2p.get_untracked();
        let (start_at, autoplay) = resume.get_value();
        element.set_autoplay(autoplay);
        stream.set_value(None);
        stats.set(None);
        error.set(None);
        let video = item.get_value();
        spawn_local(async move {
            let started = Stream::start(&video, element.clone(), p2p).await;
            if mounts.try_get_untracked() != Some(mount) {
                return; // superseded or unmounted: dropping `started` stops it
            }
            match started {
                Ok(s) => {
                    if start_at > 0.0 {
                        // Before metadata this sets the start position; the player follows the
                        // seek like any other.
                        element.set_current_time(start_at);
                    }
                    stats.try_set(Some(s.snapshot()));
                    stream.try_set_value(Some(s));
                }
                Err(e) => {
                    error.try_set(Some(format!("Cannot play this: {e}")));
                }
            }
        });
    });

    if let Ok(handle) = set_interval_with_handle(
        move || {
            if let Some(snapshot) = stream
                .try_with_value(|s| s.as_ref().map(Stream::snapshot))
                .flatten()
            {
                stats.try_set(Some(snapshot));
            }
        },
        STATS_EVERY,
    ) {
        on_cleanup(move || handle.clear());
    }
    on_cleanup(move || {
        // Leaves the swarm and frees the pieces as soon as the page goes.
        stream.try_update_value(|s| *s = None);
    });

    // A view counts once playback really starts, not on page load.
    let on_playing = move |_| {
        if !view_counted.get_value() {
            view_counted.set_value(true);
            let uuid = item.with_value(|v| v.uuid.clone());
            spawn_local(async move { api::add_view(&uuid).await });
        }
    };
    let on_media_error = move |_| {
        if let Some(e) = element().and_then(|e| e.error()) {
            error.set(Some(format!(
                "The browser cannot decode this media (code {}).",
                e.code()
            )));
        }
    };

    let name = video.name.clone();
    let poster = video.thumbnail_url.clone();
    let is_audio = video.is_audio;
    let media = move || {
        mounts.track();
        if is_audio {
            view! {
                <audio
                    id="player"
                    node_ref=audio_ref
                    controls=true
                    preload="auto"
                    prop:muted=options.muted
                    aria-label=name.clone()
                    on:playing=on_playing
                    on:error=on_media_error
                ></audio>
            }
            .into_any()
        } else {
            view! {
                <video
                    id="player"
                    node_ref=video_ref
                    controls=true
                    playsinline=true
                    preload="auto"
                    prop:muted=options.muted
                    poster=poster.clone()
                    aria-label=name.clone()
                    on:playing=on_playing
                    on:error=on_media_error
                ></video>
            }
            .into_any()
        }
    };
    let art = is_audio.then(|| {
        view! {
            <div class="audio-art" aria-hidden="true">
                {match video.thumbnail_url.clone() {
                    Some(url) => view! { <img src=url alt=""/> }.into_any(),
                    None => view! { <span>"♪"</span> }.into_any(),
                }}
            </div>
        }
    });
    view! {
        <div class="player-frame" class:audio=is_audio>
            {art}
            {media}
            {move || error.get().map(|e| view! { <p class="player-error" role="alert">{e}</p> })}
        </div>
    }
}
