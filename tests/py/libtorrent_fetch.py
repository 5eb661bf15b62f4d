#!/usr/bin/python3
"""Downloads a pod's torrent with libtorrent (Debian's python3-libtorrent), the library behind
qBittorrent, Deluge and most desktop clients, and prints what happened as one JSON object.

    /usr/bin/python3 libtorrent_fetch.py TORRENT_URL_OR_FILE SAVE_DIR [TIMEOUT_SECONDS]

Only what the .torrent names may be used: DHT, local peer discovery, UPnP and NAT-PMP are off and
the session listens on 127.0.0.1 only, so the bytes can come from nowhere but the torrent's
trackers and its WebSeed (BEP 19 url-list). libtorrent asks the WebSeed for real byte ranges
(206) and checks every piece against the torrent's SHA-1s, which makes it a stricter judge of
the WebSeed than aria2.

Output (stdout, one line): {"ok", "state", "progress", "total_download", "total_payload_download",
"pieces", "num_pieces", "info_hash", "file", "web_seeds", "tracker_peers", "tracker_replies",
"tracker_errors", "errors"}. Exit status 0 once seeding (every piece verified), 1 on timeout or
error, 2 on bad usage. Diagnostics go to stderr.
"""

import json
import os
import sys
import time
import urllib.request

import libtorrent as lt


def main(argv):
    if len(argv) not in (3, 4):
        print(__doc__, file=sys.stderr)
        return 2
    source, save_dir = argv[1], argv[2]
    timeout = float(argv[3]) if len(argv) == 4 else 60.0

    if source.startswith(("http://", "https://")):
        with urllib.request.urlopen(source, timeout=30) as response:
            torrent_bytes = response.read()
    else:
        with open(source, "rb") as f:
            torrent_bytes = f.read()
    info = lt.torrent_info(lt.bdecode(torrent_bytes))

    session = lt.session(
        {
            # Nothing but the torrent's own sources, and loopback only.
            "enable_dht": False,
            "enable_lsd": False,
            "enable_upnp": False,
            "enable_natpmp": False,
            "listen_interfaces": "127.0.0.1:0",
            "outgoing_interfaces": "lo",
            # libtorrent refuses trackers on *loopback* whose path is not exactly "/announce"
            # (its SSRF mitigation; LAN and public addresses are not affected). The pod's tracker
            # is at /tracker/announce and this test runs on 127.0.0.1, so lift that rule here.
            "ssrf_mitigation": False,
            "alert_mask": lt.alert.category_t.error_notification
            | lt.alert.category_t.tracker_notification
            | lt.alert.category_t.status_notification
            | lt.alert.category_t.peer_notification,
        }
    )
    handle = session.add_torrent({"ti": info, "save_path": save_dir})

    tracker_replies, tracker_errors, errors = [], [], []
    deadline = time.monotonic() + timeout
    seeding = False
    while time.monotonic() < deadline:
        for alert in session.pop_alerts():
            if isinstance(alert, lt.tracker_reply_alert):
                tracker_replies.append({"url": alert.url, "peers": alert.num_peers})
            elif isinstance(alert, lt.tracker_error_alert):
                tracker_errors.append({"url": alert.url, "message": alert.message()})
            elif isinstance(alert, (lt.url_seed_alert, lt.torrent_error_alert, lt.file_error_alert,
                                    lt.hash_failed_alert)):
                errors.append(alert.message())
                print(alert.message(), file=sys.stderr)
        status = handle.status()
        if status.is_seeding:
            seeding = True
            break
        time.sleep(0.1)

    # A last look for late tracker answers (the announce of a fast download can trail it).
    time.sleep(0.5)
    for alert in session.pop_alerts():
        if isinstance(alert, lt.tracker_reply_alert):
            tracker_replies.append({"url": alert.url, "peers": alert.num_peers})
        elif isinstance(alert, lt.tracker_error_alert):
            tracker_errors.append({"url": alert.url, "message": alert.message()})

    status = handle.status()
    files = info.files()
    result = {
        "ok": seeding,
        "state": str(status.state),
        "progress": status.progress,
        "total_download": status.total_download,
        "total_payload_download": status.total_payload_download,
        "pieces": sum(1 for have in status.pieces if have),
        "num_pieces": info.num_pieces(),
        "info_hash": str(info.info_hash()),
        "file": os.path.join(save_dir, files.file_path(0)),
        "web_seeds": [seed for seed in handle.url_seeds()],
        # Peers the trackers named: with none, every byte came from the WebSeed.
        "tracker_peers": sum(reply["peers"] for reply in tracker_replies),
        "tracker_replies": tracker_replies,
        "tracker_errors": tracker_errors,
        "errors": errors,
    }
    session.remove_torrent(handle)
    print(json.dumps(result))
    return 0 if seeding else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
