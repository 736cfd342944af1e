//! The quarantine against misuse: release and delete act only on held
//! messages, the audit log only grows, and its lines cannot be forged
//! through the user name.

use std::fs;
use std::os::unix::fs::MetadataExt;

use gatehouse_engine::{Action, Envelope, MessageSummary, Verdict};
use gatehouse_quarantine::{Folder, Quarantine, QuarantineError, QuarantineId};

const RAW: &[u8] = b"Subject: held\r\n\r\nbody\r\n";

fn verdict(id: QuarantineId) -> Verdict {
    Verdict {
        id: id.to_string(),
        action: Action::Hold,
        score: 12.5,
        signals: Vec::new(),
        envelope: Envelope {
            mail_from: "sender@example.net".to_owned(),
            rcpt_to: vec!["alice@example.com".to_owned()],
            client_ip: None,
            helo: None,
        },
        message: MessageSummary::default(),
        links: Vec::new(),
        attachments: Vec::new(),
        qr_codes: Vec::new(),
        findings: Vec::new(),
        campaign: None,
        endpoint_alerts: Vec::new(),
        file: None,
    }
}

fn open() -> (tempfile::TempDir, Quarantine) {
    let dir = tempfile::tempdir().expect("temporary folder");
    let quarantine = Quarantine::open(&dir.path().join("quarantine")).expect("quarantine opens");
    (dir, quarantine)
}

fn hold(quarantine: &Quarantine) -> QuarantineId {
    let id = QuarantineId::now();
    quarantine.hold(&verdict(id), RAW).expect("hold succeeds");
    id
}

fn audit_lines(quarantine: &Quarantine) -> Vec<String> {
    fs::read_to_string(quarantine.root().join("audit.log"))
        .expect("audit log")
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn release_of_deleted_id_is_not_found() {
    let (_dir, quarantine) = open();
    let id = hold(&quarantine);
    quarantine.delete(id, "alice").expect("delete succeeds");

    let released = quarantine.release(id, "alice");

    assert!(
        matches!(released, Err(QuarantineError::NotFound { .. })),
        "{released:?}"
    );
    assert!(quarantine.message_path(Folder::Deleted, id).exists());
    assert!(!quarantine.message_path(Folder::Released, id).exists());
}

#[test]
fn delete_of_released_id_is_not_found() {
    let (_dir, quarantine) = open();
    let id = hold(&quarantine);
    quarantine.release(id, "alice").expect("release succeeds");

    let deleted = quarantine.delete(id, "alice");

    assert!(
        matches!(deleted, Err(QuarantineError::NotFound { .. })),
        "{deleted:?}"
    );
    assert!(quarantine.message_path(Folder::Released, id).exists());
    assert!(!quarantine.message_path(Folder::Deleted, id).exists());
}

#[test]
fn release_of_unknown_id_is_not_found() {
    let (_dir, quarantine) = open();
    let id = QuarantineId::now();

    let released = quarantine.release(id, "alice");
    let locked = quarantine.lock(id);

    assert!(
        matches!(released, Err(QuarantineError::NotFound { .. })),
        "{released:?}"
    );
    assert!(
        matches!(locked, Err(QuarantineError::NotFound { .. })),
        "{locked:?}"
    );
    assert!(!quarantine.root().join("audit.log").exists());
}

#[test]
fn file_outside_held_is_never_listed() {
    let (_dir, quarantine) = open();
    let id = QuarantineId::now();
    // A verdict dropped into released/ by hand is not held and stays put.
    fs::write(
        quarantine.verdict_path(Folder::Released, id),
        serde_json::to_vec(&verdict(id)).expect("verdict JSON"),
    )
    .expect("write verdict");

    let listed = quarantine.list().expect("list succeeds");
    let verdict_read = quarantine.verdict(id);

    assert!(listed.is_empty(), "{listed:?}");
    assert!(
        matches!(verdict_read, Err(QuarantineError::NotFound { .. })),
        "{verdict_read:?}"
    );
}

#[test]
fn second_lock_on_one_id_is_busy() {
    let (_dir, quarantine) = open();
    let id = hold(&quarantine);
    let first = quarantine.lock(id).expect("first lock");

    let second = quarantine.lock(id);

    assert!(
        matches!(second, Err(QuarantineError::Busy { .. })),
        "{second:?}"
    );
    drop(first);
    assert!(
        quarantine.lock(id).is_ok(),
        "lock after the first is dropped"
    );
}

#[test]
fn audit_log_keeps_earlier_lines() {
    let (_dir, quarantine) = open();
    let released = hold(&quarantine);
    let deleted = hold(&quarantine);

    quarantine
        .release(released, "alice")
        .expect("release succeeds");
    let first = audit_lines(&quarantine);
    quarantine.delete(deleted, "bob").expect("delete succeeds");
    let both = audit_lines(&quarantine);

    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(both.len(), 2, "{both:?}");
    assert_eq!(both[0], first[0], "first line after a second command");
    assert!(
        both[1].contains(&format!(" user=bob command=delete id={deleted} ")),
        "{both:?}"
    );
}

#[test]
fn audit_records_process_uid() {
    let (_dir, quarantine) = open();
    let id = hold(&quarantine);
    let uid = fs::metadata("/proc/self").expect("/proc/self").uid();

    quarantine.release(id, "alice").expect("release succeeds");

    let lines = audit_lines(&quarantine);
    assert!(lines[0].ends_with(&format!(" uid={uid}")), "{lines:?}");
}

#[test]
fn audit_user_cannot_add_fields() {
    let (_dir, quarantine) = open();
    let id = hold(&quarantine);

    quarantine
        .release(id, "eve command=delete id=x\nforged line uid=0")
        .expect("release succeeds");

    let lines = audit_lines(&quarantine);
    assert_eq!(lines.len(), 1, "{lines:?}");
    let keys: Vec<&str> = lines[0]
        .split(' ')
        .skip(1)
        .map(|field| field.split('=').next().unwrap_or(""))
        .collect();
    assert_eq!(keys, ["user", "command", "id", "uid"], "{lines:?}");
}
