//! Search as you type: the box updates the URL (`/search?search=…&mediaType=…`) a moment after
//! the last key, and the URL drives the query, so results can be shared and Back works.

use std::time::Duration;

use leptos::prelude::*;
use leptos_router::hooks::{use_navigate, use_query_map};
use leptos_router::NavigateOptions;

use crate::api::{self, Video};
use crate::components::{Pager, VideoGrid};

const PER_PAGE: u64 = 24;
/// Wait this long after the last key before asking the pod.
const DEBOUNCE: Duration = Duration::from_millis(250);

fn search_url(text: &str, media_type: &str) -> String {
    let mut url = format!("/search?search={}", api::encode(text));
    if !media_type.is_empty() {
        url.push_str("&mediaType=");
        url.push_str(&api::encode(media_type));
    }
    url
}

#[component]
pub fn Search() -> impl IntoView {
    super::set_title("Search · Shoal");
    let query = use_query_map();
    let url_text = Memo::new(move |_| query.with(|q| q.get("search").unwrap_or_default()));
    let url_type = Memo::new(move |_| query.with(|q| q.get("mediaType").unwrap_or_default()));
    let text = RwSignal::new(url_text.get_untracked());
    let only_local = RwSignal::new(false);
    let page = RwSignal::new(0u64);
    let pending = StoredValue::new(None::<TimeoutHandle>);

    // Back and Forward change the URL: the box follows.
    Effect::new(move |_| {
        let t = url_text.get();
        if text.get_untracked() != t {
            text.set(t);
        }
    });

    let navigate = use_navigate();
    let go = move |t: String, m: String| {
        if let Some(h) = pending.get_value() {
            h.clear();
        }
        page.set(0);
        navigate(
            &search_url(&t, &m),
            NavigateOptions {
                replace: true,
                scroll: false,
                ..Default::default()
            },
        );
    };
    let go_later = {
        let go = go.clone();
        move |t: String| {
            if let Some(h) = pending.get_value() {
                h.clear();
            }
            let go = go.clone();
            let m = url_type.get_untracked();
            pending.set_value(set_timeout_with_handle(move || go(t, m), DEBOUNCE).ok());
        }
    };
    let go_type = {
        let go = go.clone();
        move |m: String| go(text.get_untracked(), m)
    };
    let go_now = move || go(text.get_untracked(), url_type.get_untracked());

    let results = LocalResource::new(move || {
        let (t, m, start) = (url_text.get(), url_type.get(), page.get() * PER_PAGE);
        async move {
            if t.trim().is_empty() {
                return Ok(None);
            }
            api::search_videos(t.trim(), &m, start, PER_PAGE)
                .await
                .map(Some)
        }
    });

    view! {
        <section class="search">
            <h1>"Search"</h1>
            <form
                class="search-form"
                role="search"
                on:submit=move |ev| {
                    ev.prevent_default();
                    go_now();
                }
            >
                <label for="search-input" class="visually-hidden">"Search videos"</label>
                <input
                    type="search"
                    id="search-input"
                    placeholder="Titles, descriptions, tags…"
                    autocomplete="off"
                    maxlength="200"
                    autofocus=true
                    prop:value=move || text.get()
                    on:input=move |ev| {
                        let t = event_target_value(&ev);
                        text.set(t.clone());
                        go_later(t);
                    }
                />
                <label for="search-type">"Type"</label>
                <select
                    id="search-type"
                    prop:value=move || url_type.get()
                    on:change=move |ev| go_type(event_target_value(&ev))
                >
                    <option value="">"All"</option>
                    <option value="video">"Video"</option>
                    <option value="audio">"Audio"</option>
                </select>
                <label for="search-scope">"Pods"</label>
                <select
                    id="search-scope"
                    on:change=move |ev| only_local.set(event_target_value(&ev) == "local")
                >
                    <option value="all">"This pod and followed pods"</option>
                    <option value="local">"This pod only"</option>
                </select>
            </form>
            {move || match results.get() {
                None => view! { <p class="loading" id="search-summary">"Searching…"</p> }.into_any(),
                Some(Ok(None)) => {
                    view! {
                        <p class="empty-note" id="search-summary">
                            "Type to search titles, descriptions and tags."
                        </p>
                    }
                        .into_any()
                }
                Some(Err(e)) => {
                    view! {
                        <p class="error" id="search-summary" role="alert">
                            {format!("The search failed: {e}")}
                        </p>
                    }
                        .into_any()
                }
                Some(Ok(Some(list))) => {
                    view! { <SearchResults list only_local=only_local.get() page/> }.into_any()
                }
            }}
        </section>
    }
}

#[component]
fn SearchResults(list: api::VideoPage, only_local: bool, page: RwSignal<u64>) -> impl IntoView {
    let videos: Vec<Video> = list
        .data
        .into_iter()
        .filter(|v| !only_local || v.pod.local)
        .collect();
    let summary = match list.total {
        0 => "No results. Try other words or fewer filters.".to_string(),
        1 => "1 result".to_string(),
        n => format!("{n} results"),
    };
    view! {
        <p id="search-summary" aria-live="polite">{summary}</p>
        <VideoGrid videos empty="No results from this pod on this page."/>
        <Pager page total=list.total per_page=PER_PAGE/>
    }
}
