//! The live P2P panel of the watch page: the viewer's switch, peers, rates, where the bytes came
//! from (peers versus the pod), and a map of the file's pieces.

use leptos::html;
use leptos::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::CanvasRenderingContext2d;

use crate::format;
use crate::prefs;
use crate::stream::{PieceState, Snapshot};

/// Drawing size of the piece map; CSS scales it to the panel's width.
const MAP_WIDTH: u32 = 600;
const MAP_HEIGHT: u32 = 24;
const COLOR_MISSING: &str = "#dfe5ea";
const COLOR_HELD: &str = "#0b6e8a";
const COLOR_DOWNLOADING: &str = "#e8a33d";

#[component]
pub fn P2pPanel(stats: RwSignal<Option<Snapshot>>, p2p: RwSignal<bool>) -> impl IntoView {
    // Reads one number out of the latest snapshot without cloning the piece list.
    let read = move |f: fn(&Snapshot) -> u64| stats.with(|s| s.as_ref().map_or(0, f));
    let total = move || read(|s| s.from_peers) + read(|s| s.from_pod);
    let peer_pct = move || format::percent(read(|s| s.from_peers), total());
    view! {
        <section
            id="p2p-panel"
            class="panel"
            aria-labelledby="p2p-title"
            data-peers=move || read(|s| s.peers as u64)
            data-from-peers=move || read(|s| s.from_peers)
            data-from-pod=move || read(|s| s.from_pod)
        >
            <h2 id="p2p-title">"Peer-to-peer"</h2>
            <P2pSwitch p2p/>
            <dl class="p2p-numbers">
                <div>
                    <dt>"Peers"</dt>
                    <dd id="p2p-peers">{move || read(|s| s.peers as u64)}</dd>
                </div>
                <div>
                    <dt>"Download"</dt>
                    <dd id="p2p-down">{move || format::rate(read(|s| s.down_rate))}</dd>
                </div>
                <div>
                    <dt>"Upload"</dt>
                    <dd id="p2p-up">{move || format::rate(read(|s| s.up_rate))}</dd>
                </div>
                <div>
                    <dt>"Shared"</dt>
                    <dd id="p2p-uploaded">{move || format::bytes(read(|s| s.uploaded))}</dd>
                </div>
            </dl>
            <h3>"Where the bytes came from"</h3>
            <div
                class="share-bar"
                role="img"
                aria-label=move || format!("{}% from peers, {}% from the pod", peer_pct(), 100 - peer_pct())
            >
                <span class="from-peers" style:width=move || format!("{}%", peer_pct())></span>
                <span class="from-pod" style:width=move || format!("{}%", 100 - peer_pct())></span>
            </div>
            <p class="share-legend">
                <span id="peer-share">{move || format!("{}% from peers", peer_pct())}</span>
                <span>
                    {move || format!(
                        "{} from peers · {} from the pod",
                        format::bytes(read(|s| s.from_peers)),
                        format::bytes(read(|s| s.from_pod)),
                    )}
                </span>
            </p>
            <PieceMap stats/>
        </section>
    }
}

/// The viewer's choice to fetch from and share with other viewers, remembered in the browser.
#[component]
fn P2pSwitch(p2p: RwSignal<bool>) -> impl IntoView {
    view! {
        <div class="switch">
            <input
                type="checkbox"
                id="p2p-toggle"
                prop:checked=move || p2p.get()
                on:change=move |ev| {
                    let on = event_target_checked(&ev);
                    prefs::set_p2p_enabled(on);
                    p2p.set(on);
                }
            />
            <label for="p2p-toggle">"Share with other viewers"</label>
        </div>
        <p class="hint">
            {move || {
                if p2p.get() {
                    "Pieces come from other viewers and the pod; you share what you have while the page is open."
                } else {
                    "Off: everything comes from the pod and nothing is shared."
                }
            }}
        </p>
    }
}

/// Held, downloading and missing pieces, left to right through the file.
#[component]
fn PieceMap(stats: RwSignal<Option<Snapshot>>) -> impl IntoView {
    let canvas = NodeRef::<html::Canvas>::new();
    let count = move |state: PieceState| {
        stats.with(|s| {
            s.as_ref()
                .map_or(0, |s| s.pieces.iter().filter(|p| **p == state).count())
        })
    };
    Effect::new(move |_| {
        let Some(canvas) = canvas.get() else { return };
        stats.with(|s| draw_pieces(&canvas, s.as_ref().map_or(&[], |s| &s.pieces)));
    });
    view! {
        <h3>"Pieces"</h3>
        <canvas
            id="piece-map"
            node_ref=canvas
            width=MAP_WIDTH
            height=MAP_HEIGHT
            role="img"
            aria-label=move || {
                stats.with(|s| match s {
                    Some(s) => format!("{} of {} pieces held", s.held(), s.pieces.len()),
                    None => "No pieces yet".into(),
                })
            }
        ></canvas>
        <ul class="piece-legend">
            <li><span class="swatch held"></span>{move || format!("Held {}", count(PieceState::Held))}</li>
            <li>
                <span class="swatch downloading"></span>
                {move || format!("Downloading {}", count(PieceState::Downloading))}
            </li>
            <li>
                <span class="swatch missing"></span>
                {move || format!("Missing {}", count(PieceState::Missing))}
            </li>
        </ul>
    }
}

fn draw_pieces(canvas: &web_sys::HtmlCanvasElement, pieces: &[PieceState]) {
    let Some(ctx) = canvas
        .get_context("2d")
        .ok()
        .flatten()
        .and_then(|c| c.dyn_into::<CanvasRenderingContext2d>().ok())
    else {
        return;
    };
    let (w, h) = (MAP_WIDTH as f64, MAP_HEIGHT as f64);
    ctx.set_fill_style_str(COLOR_MISSING);
    ctx.fill_rect(0.0, 0.0, w, h);
    let n = pieces.len();
    if n == 0 {
        return;
    }
    let slot = w / n as f64;
    // A gap between wide slots keeps neighbouring pieces apart; narrow ones touch.
    let gap = if slot >= 4.0 { 1.0 } else { 0.0 };
    // Downloading pieces are drawn last so that they stay visible when many pieces share a pixel.
    for (state, color) in [
        (PieceState::Held, COLOR_HELD),
        (PieceState::Downloading, COLOR_DOWNLOADING),
    ] {
        ctx.set_fill_style_str(color);
        for (i, _) in pieces.iter().enumerate().filter(|(_, p)| **p == state) {
            let x = (i as f64 * slot).floor();
            ctx.fill_rect(x, 0.0, (slot - gap).max(1.0), h);
        }
    }
}
