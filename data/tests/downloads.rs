//! Downloads against a real HTTP server on the loopback address: a good file lands once its
//! SHA-256 (or the published prefix of it) matches; a wrong file, a 404, a cut or a stalled
//! connection leave nothing in place, and the next attempt resumes what was received.

#[path = "support/http.rs"]
mod http;

use std::path::PathBuf;
use std::time::Duration;

use data::datasets::fetch::{RemoteFile, download_within};
use http::{Answer, blob, serve, sha256_hex as sha256};

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("downloads-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const STALL: Duration = Duration::from_millis(500);

#[test]
fn a_good_file_lands_and_a_published_prefix_is_enough() {
    let bytes = blob(300_000, 1);
    let server = serve(vec![("weights.pth", Answer::File(bytes.clone()))]);
    let dir = scratch("good");
    for sha256 in [sha256(&bytes), &sha256(&bytes)[..8]] {
        let _ = std::fs::remove_file(dir.join("weights.pth"));
        let remote = RemoteFile {
            url: server.url("weights.pth"),
            file_name: "weights.pth",
            sha256,
        };
        let path = download_within(&remote, &dir, "offline", STALL).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
        assert!(!dir.join("weights.pth.part").exists());
    }
    // In place and matching: not downloaded again.
    let requests = server.ranges.lock().unwrap().len();
    let remote = RemoteFile {
        url: server.url("weights.pth"),
        file_name: "weights.pth",
        sha256: sha256(&bytes),
    };
    download_within(&remote, &dir, "offline", STALL).unwrap();
    assert_eq!(server.ranges.lock().unwrap().len(), requests);
}

#[test]
fn a_file_with_another_hash_is_never_used() {
    let bytes = blob(50_000, 2);
    let server = serve(vec![("weights.pth", Answer::File(bytes.clone()))]);
    let dir = scratch("wrong-hash");
    let remote = RemoteFile {
        url: server.url("weights.pth"),
        file_name: "weights.pth",
        sha256: "0123abcd",
    };
    let error = download_within(&remote, &dir, "offline", STALL)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("does not match the published 0123abcd") && error.contains(sha256(&bytes)),
        "{error}"
    );
    assert!(!dir.join("weights.pth").exists());
    assert!(!dir.join("weights.pth.part").exists());
}

#[test]
fn a_404_says_what_the_server_answered() {
    let server = serve(vec![("gone.pth", Answer::NotFound)]);
    let dir = scratch("404");
    let remote = RemoteFile {
        url: server.url("gone.pth"),
        file_name: "gone.pth",
        sha256: "0123abcd",
    };
    let error = download_within(&remote, &dir, "offline", STALL)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("HTTP 404") && error.contains(&server.url("gone.pth").to_string()),
        "{error}"
    );
    assert!(!error.contains("Offline?"), "{error}");
    assert!(!dir.join("gone.pth").exists());
}

#[test]
fn a_cut_or_stalled_download_resumes_where_it_stopped() {
    let bytes = blob(200_000, 3);
    let server = serve(vec![
        ("cut.pth", Answer::CutAfter(bytes.clone(), 80_000)),
        (
            "stalls.pth",
            Answer::StallAfter(bytes.clone(), 120_000, Duration::from_secs(3)),
        ),
        ("whole.pth", Answer::File(bytes.clone())),
    ]);
    for (path, received) in [("cut.pth", 80_000), ("stalls.pth", 120_000)] {
        let dir = scratch(path);
        let broken = RemoteFile {
            url: server.url(path),
            file_name: "weights.pth",
            sha256: sha256(&bytes),
        };
        let started = std::time::Instant::now();
        let error = download_within(&broken, &dir, "offline", STALL)
            .unwrap_err()
            .to_string();
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{path}: waited out the stall"
        );
        assert!(error.contains("run again to resume"), "{path}: {error}");
        assert!(!dir.join("weights.pth").exists(), "{path}");
        let part = std::fs::metadata(dir.join("weights.pth.part"))
            .unwrap()
            .len();
        assert_eq!(part, received, "{path}");

        let whole = RemoteFile {
            url: server.url("whole.pth"),
            ..broken
        };
        let landed = download_within(&whole, &dir, "offline", STALL).unwrap();
        assert_eq!(std::fs::read(landed).unwrap(), bytes, "{path}");
        let ranges = server.ranges.lock().unwrap();
        let last = ranges.iter().rev().find(|(p, _)| p == "whole.pth").unwrap();
        assert_eq!(
            last.1.as_deref(),
            Some(format!("bytes={received}-").as_str())
        );
    }
}

#[test]
fn a_slow_but_steady_server_is_waited_for() {
    let bytes = blob(40_000, 4);
    let server = serve(vec![(
        "slow.pth",
        Answer::Trickle(bytes.clone(), 4_000, Duration::from_millis(100)),
    )]);
    let dir = scratch("slow");
    let remote = RemoteFile {
        url: server.url("slow.pth"),
        file_name: "slow.pth",
        sha256: sha256(&bytes),
    };
    let path = download_within(&remote, &dir, "offline", STALL).unwrap();
    assert_eq!(std::fs::read(path).unwrap(), bytes);
}
