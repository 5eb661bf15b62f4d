//! The watch page (`/w/{uuid}`): the player, what the video is and where it comes from, how to
//! share it, and the live P2P panel.

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;
use wasm_bindgen::JsValue;

use crate::api::{self, Video};
use crate::components::{MediaPlayer, P2pPanel, PlayerOptions};
use crate::format;
use crate::prefs;
use crate::stream::Snapshot;

#[component]
pub fn Watch() -> impl IntoView {
    let params = use_params_map();
    let uuid = Memo::new(move |_| params.with(|p| p.get("uuid").unwrap_or_default()));
    let video = LocalResource::new(move || {
        let id = uuid.get();
        async move { api::get_video(&id).await }
    });
    move || match video.get() {
        None => view! { <p class="loading">"Loading…"</p> }.into_any(),
        Some(Err(e)) => view! {
            <section class="empty">
                <h1>"This video is not available"</h1>
                <p role="alert">{e}</p>
                <p><a href="/">"Back to the home page"</a></p>
            </section>
        }
        .into_any(),
        Some(Ok(video)) => view! { <WatchVideo video/> }.into_any(),
    }
}

#[component]
fn WatchVideo(video: Video) -> impl IntoView {
    super::set_title(&format!("{} · Shoal", video.name));
    let p2p = RwSignal::new(prefs::p2p_enabled());
    let stats = RwSignal::new(None::<Snapshot>);
    let options = PlayerOptions {
        autoplay: true,
        ..PlayerOptions::default()
    };
    view! {
        <article class="watch">
            <div class="watch-main">
                <MediaPlayer video=video.clone() p2p stats options/>
                <h1 id="video-title">{video.name.clone()}</h1>
                <VideoFacts video=video.clone()/>
                {(!video.description.is_empty())
                    .then(|| view! { <p class="description">{video.description.clone()}</p> })}
                <Tags tags=video.tags.clone()/>
            </div>
            <aside class="watch-side">
                <P2pPanel stats p2p/>
                <ShareBox video/>
            </aside>
        </article>
    }
}

/// Views, date, size, and the pod the video comes from.
#[component]
fn VideoFacts(video: Video) -> impl IntoView {
    let facts = [
        format::views(video.views),
        format::date(&video.created_at).to_owned(),
        video.duration.map(format::duration).unwrap_or_default(),
        format::bytes(video.size),
    ]
    .into_iter()
    .filter(|s| !s.is_empty())
    .collect::<Vec<_>>()
    .join(" · ");
    let origin = if video.pod.local {
        "Published on this pod".to_string()
    } else {
        "Published on".to_string()
    };
    view! {
        <p class="video-facts">{facts}</p>
        <p class="video-origin" id="video-origin">
            {origin}
            " "
            <a href=video.pod.url.clone() class:badge=!video.pod.local class:pod=!video.pod.local>
                {video.pod.host.clone()}
            </a>
        </p>
    }
}

#[component]
fn Tags(tags: Vec<String>) -> impl IntoView {
    (!tags.is_empty()).then(|| {
        view! {
            <ul class="tags" aria-label="Tags">
                {tags
                    .into_iter()
                    .map(|t| {
                        let href = format!("/search?search={}", api::encode(&t));
                        view! { <li><a href=href>{format!("#{t}")}</a></li> }
                    })
                    .collect_view()}
            </ul>
        }
    })
}

/// The page link, the magnet link and an embed snippet, each with a Copy button.
#[component]
fn ShareBox(video: Video) -> impl IntoView {
    let snippet = format!(
        r#"<iframe src="{}" title="{}" width="560" height="315" style="border:0" allow="autoplay; fullscreen" allowfullscreen></iframe>"#,
        video.embed_url,
        html_attribute(&video.name)
    );
    view! {
        <section class="panel share" aria-labelledby="share-title">
            <h2 id="share-title">"Share"</h2>
            <CopyField id="share-link" label="Link" value=video.watch_url.clone()/>
            <CopyField id="share-magnet" label="Magnet link" value=video.magnet_uri.clone()/>
            <CopyField id="share-embed" label="Embed code" value=snippet/>
            <p class="downloads">
                <a href=video.torrent_url.clone() download="">".torrent file"</a>
                " · "
                <a href=video.file_url.clone() download="">"Download the file"</a>
            </p>
        </section>
    }
}

#[component]
fn CopyField(id: &'static str, label: &'static str, value: String) -> impl IntoView {
    let copied = RwSignal::new(false);
    let text = value.clone();
    view! {
        <div class="copy-field">
            <label for=id>{label}</label>
            <div class="copy-row">
                <input
                    id=id
                    type="text"
                    readonly=true
                    prop:value=value
                    on:focus=move |ev| {
                        // One click selects everything, ready for Ctrl+C.
                        let input: web_sys::HtmlInputElement = event_target(&ev);
                        input.select();
                    }
                />
                <button
                    type="button"
                    on:click=move |_| {
                        copy_to_clipboard(&text);
                        copied.set(true);
                    }
                >
                    {move || if copied.get() { "Copied" } else { "Copy" }}
                </button>
            </div>
        </div>
    }
}

/// Writes to the clipboard where the browser offers it (secure contexts only); elsewhere the
/// field's text stays selectable by hand.
fn copy_to_clipboard(text: &str) {
    let Some(window) = web_sys::window() else {
        return;
    };
    let navigator = window.navigator();
    let Ok(clipboard) = js_sys::Reflect::get(&navigator, &JsValue::from_str("clipboard")) else {
        return;
    };
    if !clipboard.is_object() {
        return;
    }
    let Ok(write) = js_sys::Reflect::get(&clipboard, &JsValue::from_str("writeText")) else {
        return;
    };
    if let Some(write) = wasm_bindgen::JsCast::dyn_ref::<js_sys::Function>(&write) {
        if let Ok(promise) = write.call1(&clipboard, &JsValue::from_str(text)) {
            // A refusal (no permission) is not worth a console error: the text is on screen.
            if let Ok(promise) = wasm_bindgen::JsCast::dyn_into::<js_sys::Promise>(promise) {
                wasm_bindgen_futures::spawn_local(async move {
                    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
                });
            }
        }
    }
}

/// Escapes text for a double-quoted HTML attribute.
fn html_attribute(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
