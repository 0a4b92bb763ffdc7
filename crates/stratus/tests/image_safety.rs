//! Issue 11, hole 1: an image must never make the control plane read a file
//! outside the image. A VMDK descriptor whose FLAT extent names
//! `../admin.password` used to yield a volume holding the password.
//! Mirrors Glance's upload-time format inspection (the image is refused with
//! a 400 and stays `queued`) and Nova/Cinder's check at first use
//! (`format_inspector`: detected format must match `disk_format`, VMDK only
//! `monolithicSparse`/`streamOptimized` without external extents).

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(30);
const SECRET: &str = "TOP-SECRET-host-file-4242";

fn descriptor() -> String {
    "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\n\n\
     RW 1 FLAT \"../secret.txt\" 0\nRW 1 FLAT \"../admin.password\" 0\n"
        .to_string()
}

async fn new_image(c: &Cloud, tok: &str, disk_format: &str) -> String {
    let body = json!({"name": "evil", "disk_format": disk_format, "container_format": "bare"});
    let (s, v) = c.call(tok, Method::POST, "/image/v2/images", Some(body)).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v["id"].as_str().expect("id").to_string()
}

async fn upload(c: &Cloud, tok: &str, id: &str, data: Vec<u8>) -> (StatusCode, String) {
    let r = c
        .http
        .put(format!("{}/image/v2/images/{id}/file", c.url))
        .header("X-Auth-Token", tok)
        .header("Content-Type", "application/octet-stream")
        .body(data)
        .send()
        .await
        .expect("upload");
    (r.status(), r.text().await.unwrap_or_default())
}

async fn wait_volume_settled(c: &Cloud, tok: &str, id: &str) -> Value {
    let deadline = Instant::now() + T;
    loop {
        let (s, v) = c.call(tok, Method::GET, &format!("/volume/v3/volumes/{id}"), None).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let st = v["volume"]["status"].as_str().unwrap_or_default().to_string();
        if st != "creating" {
            return v;
        }
        assert!(Instant::now() < deadline, "volume {id} stuck creating");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// No file of the data dir's volumes may hold the secret (or the admin password).
fn assert_no_leak(c: &Cloud) {
    let admin_pw = std::fs::read(c.data_dir.join("admin.password")).ok().filter(|p| !p.is_empty());
    for e in std::fs::read_dir(c.data_dir.join("volumes")).into_iter().flatten().flatten() {
        let data = std::fs::read(e.path()).unwrap_or_default();
        assert!(!data.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()), "{:?} holds the host file", e.path());
        if let Some(pw) = &admin_pw {
            assert!(!data.windows(pw.len()).any(|w| w == &pw[..]), "{:?} holds the admin password", e.path());
        }
    }
}

#[tokio::test]
async fn vmdk_extent_to_a_host_file_is_refused_at_upload_and_at_first_use() {
    let c = Cloud::start().await;
    let tok = c.demo().await;
    std::fs::write(c.data_dir.join("secret.txt"), SECRET).expect("secret");

    // At upload: the descriptor is refused with a 400 and the image never becomes active.
    let evil = new_image(&c, &tok, "vmdk").await;
    let (s, body) = upload(&c, &tok, &evil, descriptor().into_bytes()).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("vmdk") || body.contains("VMDK"), "the error says why: {body}");
    assert!(!body.contains(&c.data_dir.display().to_string()), "no path in the error: {body}");
    let (_, v) = c.call(&tok, Method::GET, &format!("/image/v2/images/{evil}"), None).await;
    assert_eq!(v["status"], "queued", "{v}");
    let (s, v) =
        c.call(&tok, Method::POST, "/volume/v3/volumes", Some(json!({"volume": {"size": 1, "imageRef": evil}}))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "a queued image cannot back a volume: {v}");

    // A format mismatch is refused too: qcow2 bytes uploaded as raw.
    let dir = tempdir();
    let q = dir.join("q.qcow2");
    let st = std::process::Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&q)
        .arg("1M")
        .status()
        .expect("qemu-img");
    assert!(st.success());
    let mismatch = new_image(&c, &tok, "raw").await;
    let (s, body) = upload(&c, &tok, &mismatch, std::fs::read(&q).expect("qcow2")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");

    // At first use: an active raw image whose stored bytes are the descriptor
    // (stored before inspection existed) never reaches qemu-img as a vmdk.
    let plain = new_image(&c, &tok, "raw").await;
    let (s, body) = upload(&c, &tok, &plain, vec![0u8; 4096]).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{body}");
    std::fs::write(c.data_dir.join("images").join(&plain), descriptor()).expect("overwrite");
    let (s, v) =
        c.call(&tok, Method::POST, "/volume/v3/volumes", Some(json!({"volume": {"size": 1, "imageRef": plain}}))).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let vol = v["volume"]["id"].as_str().expect("id").to_string();
    let v = wait_volume_settled(&c, &tok, &vol).await;
    assert_eq!(v["volume"]["status"], "error", "{v}");
    assert_no_leak(&c);

    // Boot from volume on that image: the server fault names no command, path or stderr.
    let (s, v) = c.post_bfv_server(&tok, "bfv", &plain).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let sid = v["server"]["id"].as_str().expect("id").to_string();
    let v = c.wait_status(&tok, &sid, "ERROR", T).await;
    let fault = v["server"]["fault"].to_string();
    for bad in ["qemu-img", "/images/", "/volumes/", "stderr", SECRET] {
        assert!(!fault.contains(bad), "fault shows {bad:?}: {fault}");
    }
    assert_no_leak(&c);
}

fn tempdir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("stratus-imgsafety-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&d).expect("mkdir");
    d
}
