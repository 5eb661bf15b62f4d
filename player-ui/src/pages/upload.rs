//! Upload (`/upload`): pick or drop a file, name it, send it with a real progress bar (speed and
//! time left), cancel at any time, and land on its watch page when the pod has it.
//!
//! The request is an `XMLHttpRequest`, not `fetch`: only XHR reports upload progress. Until
//! accounts exist, the pod wants its admin token; the page asks for it once and remembers it.

use leptos::prelude::*;
use leptos_router::hooks::use_navigate;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{File, FormData, ProgressEvent, XmlHttpRequest};

use crate::api;
use crate::format;
use crate::prefs;

/// Where an upload stands.
#[derive(Debug, Clone, PartialEq)]
enum Phase {
    Idle,
    Sending {
        sent: f64,
        total: f64,
        /// `performance.now()` when sending began.
        started_ms: f64,
    },
    /// Every byte is sent; the pod is hashing and preparing the file.
    Processing,
    Failed(String),
    Cancelled,
    Done(String),
}

impl Phase {
    fn busy(&self) -> bool {
        matches!(self, Phase::Sending { .. } | Phase::Processing)
    }
}

fn now_ms() -> f64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map_or(0.0, |p| p.now())
}

/// "12.5 MB of 40 MB · 2.1 MB/s · 13 s left".
fn progress_text(sent: f64, total: f64, started_ms: f64) -> String {
    let elapsed = ((now_ms() - started_ms) / 1000.0).max(0.001);
    let speed = sent / elapsed;
    let mut text = format!(
        "{} of {} · {}",
        format::bytes(sent as u64),
        format::bytes(total as u64),
        format::rate(speed as u64)
    );
    if speed > 0.0 && sent < total && elapsed > 0.5 {
        let left = ((total - sent) / speed).ceil();
        text.push_str(&format!(" · {} left", format::duration(left)));
    }
    text
}

/// An XHR in flight with the callbacks it calls; dropping it detaches them and aborts.
struct Transfer {
    xhr: XmlHttpRequest,
    _callbacks: Vec<Closure<dyn FnMut(web_sys::Event)>>,
}

impl Drop for Transfer {
    fn drop(&mut self) {
        self.xhr.set_onload(None);
        self.xhr.set_onerror(None);
        self.xhr.set_onabort(None);
        if let Ok(upload) = self.xhr.upload() {
            upload.set_onprogress(None);
            upload.set_onload(None);
        }
        let _ = self.xhr.abort();
    }
}

/// What the user filled in.
struct Submission {
    file: File,
    name: String,
    description: String,
    tags: String,
    token: String,
}

/// Starts the upload; `phase` follows it. `token_refused` runs when the pod rejects the token.
fn send(
    s: Submission,
    phase: RwSignal<Phase>,
    token_refused: impl Fn() + 'static,
) -> Result<Transfer, JsValue> {
    let form = FormData::new()?;
    form.append_with_str("name", s.name.trim())?;
    form.append_with_str("description", &s.description)?;
    form.append_with_str("tags", &s.tags)?;
    // The file goes last: the pod reads the text fields first, then streams the file.
    form.append_with_blob_and_filename("videofile", &s.file, &s.file.name())?;

    let xhr = XmlHttpRequest::new()?;
    xhr.open_with_async("POST", "/api/v1/videos/upload", true)?;
    xhr.set_request_header("Authorization", &format!("Bearer {}", s.token.trim()))?;

    let started_ms = now_ms();
    let on_progress = Closure::<dyn FnMut(web_sys::Event)>::new(move |ev: web_sys::Event| {
        if let Some(p) = ev.dyn_ref::<ProgressEvent>() {
            if p.length_computable() {
                phase.try_set(Phase::Sending {
                    sent: p.loaded(),
                    total: p.total(),
                    started_ms,
                });
            }
        }
    });
    let on_sent = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
        phase.try_set(Phase::Processing);
    });
    let answered = xhr.clone();
    let token = s.token.trim().to_owned();
    let on_load = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
        let status = answered.status().unwrap_or(0);
        let body = answered.response_text().ok().flatten().unwrap_or_default();
        phase.try_set(outcome(status, &body, &token, &token_refused));
    });
    let on_error = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
        phase.try_set(Phase::Failed(
            "The connection to the pod broke off before the upload finished. Check your \
             network; a file larger than the pod accepts is also cut off this way."
                .into(),
        ));
    });
    let on_abort = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
        phase.try_set(Phase::Cancelled);
    });

    let upload = xhr.upload()?;
    upload.set_onprogress(Some(on_progress.as_ref().unchecked_ref()));
    upload.set_onload(Some(on_sent.as_ref().unchecked_ref()));
    xhr.set_onload(Some(on_load.as_ref().unchecked_ref()));
    xhr.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    xhr.set_onabort(Some(on_abort.as_ref().unchecked_ref()));
    xhr.send_with_opt_form_data(Some(&form))?;
    phase.set(Phase::Sending {
        sent: 0.0,
        total: s.file.size(),
        started_ms,
    });
    Ok(Transfer {
        xhr,
        _callbacks: vec![on_progress, on_sent, on_load, on_error, on_abort],
    })
}

/// Reads the pod's answer to the upload.
fn outcome(status: u16, body: &str, token: &str, token_refused: &dyn Fn()) -> Phase {
    #[derive(serde::Deserialize)]
    struct Uploaded {
        video: UploadedRef,
    }
    #[derive(serde::Deserialize)]
    struct UploadedRef {
        uuid: String,
    }
    match status {
        200..=299 => match serde_json::from_str::<Uploaded>(body) {
            Ok(u) => {
                // The token worked: no need to ask for it again.
                prefs::set_admin_token(token);
                Phase::Done(u.video.uuid)
            }
            Err(_) => Phase::Failed("The pod took the file but its answer was unreadable.".into()),
        },
        401 | 403 => {
            prefs::forget_admin_token();
            token_refused();
            Phase::Failed(format!(
                "The pod refused the admin token: {}",
                api::error_message(status, body)
            ))
        }
        0 => Phase::Failed("The pod did not answer.".into()),
        _ => Phase::Failed(api::error_message(status, body)),
    }
}

/// The file name without its extension: a starting point for the title.
fn title_from_file_name(name: &str) -> String {
    let stem = name.rsplit_once('.').map_or(name, |(stem, _)| stem);
    stem.replace(['_', '-'], " ").trim().to_owned()
}

#[component]
pub fn Upload() -> impl IntoView {
    super::set_title("Upload · Shoal");
    let file = RwSignal::new_local(None::<File>);
    let name = RwSignal::new(String::new());
    let description = RwSignal::new(String::new());
    let tags = RwSignal::new(String::new());
    let token_known = RwSignal::new(prefs::admin_token().is_some());
    let token = RwSignal::new(String::new());
    let phase = RwSignal::new(Phase::Idle);
    let transfer = StoredValue::new_local(None::<Transfer>);

    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Phase::Done(uuid) = phase.get() {
            navigate(&format!("/w/{uuid}"), Default::default());
        }
    });
    on_cleanup(move || {
        // Leaving the page mid-upload cancels it rather than leave a request nobody watches.
        transfer.try_update_value(|t| *t = None);
    });

    let choose = move |f: File| {
        if name.get_untracked().trim().is_empty() {
            name.set(title_from_file_name(&f.name()));
        }
        file.set(Some(f));
        if !phase.get_untracked().busy() {
            phase.set(Phase::Idle);
        }
    };

    let on_submit = move |ev: web_sys::SubmitEvent| {
        ev.prevent_default();
        if phase.get_untracked().busy() {
            return;
        }
        let Some(f) = file.get_untracked() else {
            phase.set(Phase::Failed("Choose a file first.".into()));
            return;
        };
        if f.size() == 0.0 {
            phase.set(Phase::Failed("This file is empty.".into()));
            return;
        }
        let token = prefs::admin_token().unwrap_or_else(|| token.get_untracked());
        if token.trim().is_empty() {
            phase.set(Phase::Failed("Enter the pod's admin token.".into()));
            return;
        }
        let submission = Submission {
            file: f,
            name: name.get_untracked(),
            description: description.get_untracked(),
            tags: tags.get_untracked(),
            token,
        };
        // A previous transfer is over (not busy): drop it before starting the next.
        transfer.set_value(None);
        match send(submission, phase, move || {
            token_known.try_set(false);
        }) {
            Ok(t) => transfer.set_value(Some(t)),
            Err(e) => phase.set(Phase::Failed(format!(
                "The browser could not start the upload: {}",
                client_core::web::util::describe(&e)
            ))),
        }
    };
    let cancel = move |_| {
        // abort() fires the abort event, which sets the phase.
        transfer.with_value(|t| {
            if let Some(t) = t {
                let _ = t.xhr.abort();
            }
        });
    };

    view! {
        <section class="upload">
            <h1>"Upload"</h1>
            <form id="upload-form" on:submit=on_submit>
                <DropZone file choose/>
                <div class="field">
                    <label for="upload-name">"Title"</label>
                    <input
                        id="upload-name"
                        type="text"
                        required=true
                        maxlength="120"
                        prop:value=move || name.get()
                        on:input=move |ev| name.set(event_target_value(&ev))
                    />
                </div>
                <div class="field">
                    <label for="upload-description">"Description"</label>
                    <textarea
                        id="upload-description"
                        rows="4"
                        maxlength="10000"
                        prop:value=move || description.get()
                        on:input=move |ev| description.set(event_target_value(&ev))
                    ></textarea>
                </div>
                <div class="field">
                    <label for="upload-tags">"Tags"</label>
                    <input
                        id="upload-tags"
                        type="text"
                        placeholder="nature, sea, birds"
                        aria-describedby="upload-tags-hint"
                        prop:value=move || tags.get()
                        on:input=move |ev| tags.set(event_target_value(&ev))
                    />
                    <p class="hint" id="upload-tags-hint">"Separate tags with commas."</p>
                </div>
                <Show when=move || !token_known.get()>
                    <div class="field">
                        <label for="upload-token">"Pod admin token"</label>
                        <input
                            id="upload-token"
                            type="password"
                            autocomplete="off"
                            aria-describedby="upload-token-hint"
                            prop:value=move || token.get()
                            on:input=move |ev| token.set(event_target_value(&ev))
                        />
                        <p class="hint" id="upload-token-hint">
                            "Until accounts exist, uploads need the token the pod wrote to "
                            <code>"<data-dir>/admin-token"</code>
                            ". This browser remembers it after the first upload."
                        </p>
                    </div>
                </Show>
                <div class="actions">
                    <button
                        type="submit"
                        id="upload-submit"
                        class="primary"
                        disabled=move || phase.with(Phase::busy)
                    >
                        "Upload"
                    </button>
                    <Show when=move || phase.with(|p| matches!(p, Phase::Sending { .. }))>
                        <button type="button" id="upload-cancel" on:click=cancel>
                            "Cancel"
                        </button>
                    </Show>
                </div>
                <UploadProgress phase/>
            </form>
        </section>
    }
}

/// The file picker, which is also a drop target for a dragged file.
#[component]
fn DropZone(
    file: RwSignal<Option<File>, LocalStorage>,
    choose: impl Fn(File) + Copy + 'static,
) -> impl IntoView {
    let dragging = RwSignal::new(false);
    view! {
        <div
            class="dropzone"
            class:dragging=move || dragging.get()
            on:dragover=move |ev: web_sys::DragEvent| {
                // Without this the browser opens the dropped file instead.
                ev.prevent_default();
                dragging.set(true);
            }
            on:dragleave=move |_| dragging.set(false)
            on:drop=move |ev: web_sys::DragEvent| {
                ev.prevent_default();
                dragging.set(false);
                if let Some(f) = ev.data_transfer().and_then(|d| d.files()).and_then(|l| l.get(0)) {
                    choose(f);
                }
            }
        >
            <p class="dropzone-title">"Drop a video or audio file here"</p>
            <label for="upload-file">"or choose one:"</label>
            <input
                id="upload-file"
                type="file"
                accept="video/*,audio/*"
                on:change=move |ev| {
                    let input: web_sys::HtmlInputElement = event_target(&ev);
                    if let Some(f) = input.files().and_then(|l| l.get(0)) {
                        choose(f);
                    }
                }
            />
            <p class="file-info" id="upload-file-info" aria-live="polite">
                {move || {
                    file.with(|f| match f {
                        Some(f) => format!("{} · {}", f.name(), format::bytes(f.size() as u64)),
                        None => "No file chosen yet.".into(),
                    })
                }}
            </p>
        </div>
    }
}

/// The progress bar and what it means in words, or the outcome.
#[component]
fn UploadProgress(phase: RwSignal<Phase>) -> impl IntoView {
    let percent = move || {
        phase.with(|p| match p {
            Phase::Sending { sent, total, .. } if *total > 0.0 => (sent / total * 100.0).min(100.0),
            Phase::Processing | Phase::Done(_) => 100.0,
            _ => 0.0,
        })
    };
    view! {
        <div class="upload-progress" class:hidden=move || phase.with(|p| *p == Phase::Idle)>
            <progress
                id="upload-progress"
                max="100"
                prop:value=percent
                aria-label="Upload progress"
            ></progress>
            <p id="upload-status" aria-live="polite">
                {move || {
                    phase.with(|p| match p {
                        Phase::Sending { sent, total, started_ms } => {
                            format!("{:.0}% · {}", percent(), progress_text(*sent, *total, *started_ms))
                        }
                        Phase::Processing => "Sent. The pod is preparing the file for streaming…".into(),
                        Phase::Done(_) => "Done. Opening its page…".into(),
                        Phase::Cancelled => "Upload cancelled.".into(),
                        Phase::Idle | Phase::Failed(_) => String::new(),
                    })
                }}
            </p>
        </div>
        {move || {
            phase.with(|p| match p {
                Phase::Failed(message) => Some(view! {
                    <p class="error" id="upload-error" role="alert">{message.clone()}</p>
                }),
                _ => None,
            })
        }}
    }
}
