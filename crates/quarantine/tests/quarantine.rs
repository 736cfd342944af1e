use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use gatehouse_engine::{Action, Envelope, MessageSummary, Verdict};
use gatehouse_quarantine::{Folder, Quarantine, QuarantineError, QuarantineId};

const RAW: &[u8] =
    b"Received: from client (192.0.2.1) by gatehouse\r\nSubject: test\r\n\r\nbody\r\n";

fn verdict(id: QuarantineId) -> Verdict {
    Verdict {
        id: id.to_string(),
        action: Action::Hold,
        score: 12.5,
        signals: Vec::new(),
        envelope: Envelope {
            mail_from: "38117@brand.example".to_owned(),
            rcpt_to: vec!["alice@example.com".to_owned()],
            client_ip: Some("192.0.2.1".parse().expect("valid address")),
            helo: Some("client.example".to_owned()),
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

fn mode(path: &Path) -> u32 {
    fs::metadata(path)
        .expect("path exists")
        .permissions()
        .mode()
        & 0o777
}

fn open() -> (tempfile::TempDir, Quarantine) {
    let dir = tempfile::tempdir().expect("temporary folder");
    let quarantine = Quarantine::open(&dir.path().join("quarantine")).expect("quarantine opens");
    (dir, quarantine)
}

#[test]
fn hold_writes_message_and_verdict() {
    let (_dir, quarantine) = open();
    let id = QuarantineId::now();

    let held = quarantine.hold(&verdict(id), RAW).expect("hold succeeds");

    assert_eq!(held, id);
    let raw = fs::read(quarantine.message_path(Folder::Held, id)).expect("eml exists");
    assert_eq!(raw, RAW);
    let json = fs::read(quarantine.verdict_path(Folder::Held, id)).expect("json exists");
    let stored: Verdict = serde_json::from_slice(&json).expect("json is a verdict");
    assert_eq!(stored.envelope, verdict(id).envelope);
}

#[test]
fn hold_uses_private_permissions() {
    let (_dir, quarantine) = open();
    let id = QuarantineId::now();
    quarantine.hold(&verdict(id), RAW).expect("hold succeeds");

    assert_eq!(mode(quarantine.root()), 0o700);
    for folder in [Folder::Held, Folder::Released, Folder::Deleted] {
        assert_eq!(
            mode(&quarantine.root().join(folder.name())),
            0o700,
            "{folder:?}"
        );
    }
    assert_eq!(mode(&quarantine.message_path(Folder::Held, id)), 0o600);
    assert_eq!(mode(&quarantine.verdict_path(Folder::Held, id)), 0o600);
}

#[test]
fn open_tightens_existing_folder() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let root = dir.path().join("quarantine");
    fs::create_dir(&root).expect("folder created");
    fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).expect("chmod");

    Quarantine::open(&root).expect("quarantine opens");

    assert_eq!(mode(&root), 0o700);
}

#[test]
fn hold_leaves_no_temporary_files() {
    let (_dir, quarantine) = open();
    let id = QuarantineId::now();
    quarantine.hold(&verdict(id), RAW).expect("hold succeeds");

    let names: Vec<String> = fs::read_dir(quarantine.root().join("held"))
        .expect("held folder")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();

    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.iter().all(|name| !name.starts_with('.')), "{names:?}");
}

#[test]
fn list_skips_interrupted_writes() {
    let (_dir, quarantine) = open();
    let complete = QuarantineId::now();
    quarantine
        .hold(&verdict(complete), RAW)
        .expect("hold succeeds");
    // What a crash in the middle of a hold leaves: a temporary verdict, and
    // a message whose verdict was never renamed into place.
    let interrupted = QuarantineId::now();
    let held = quarantine.root().join("held");
    fs::write(held.join(format!(".tmp-{interrupted}.json")), b"{\"id\":").expect("write");
    fs::write(held.join(format!("{interrupted}.eml")), RAW).expect("write");

    let listed = quarantine.list().expect("list succeeds");

    let ids: Vec<&str> = listed
        .iter()
        .map(|verdict| verdict.as_ref().expect("readable verdict").id.as_str())
        .collect();
    assert_eq!(ids, vec![complete.to_string()]);
}

#[test]
fn list_reports_damaged_verdict_in_place() {
    let (_dir, quarantine) = open();
    let first = QuarantineId::now();
    let damaged = QuarantineId::now();
    let last = QuarantineId::now();
    for id in [first, damaged, last] {
        quarantine.hold(&verdict(id), RAW).expect("hold succeeds");
    }
    fs::write(quarantine.verdict_path(Folder::Held, damaged), b"{\"id\":").expect("write");

    let listed = quarantine.list().expect("list succeeds");

    assert_eq!(listed.len(), 3);
    assert_eq!(
        listed[0].as_ref().expect("first verdict").id,
        first.to_string()
    );
    assert!(
        matches!(listed[1], Err(QuarantineError::Json { .. })),
        "{:?}",
        listed[1]
    );
    assert_eq!(
        listed[2].as_ref().expect("last verdict").id,
        last.to_string()
    );
}

#[test]
fn list_is_in_id_order() {
    let (_dir, quarantine) = open();
    let ids: Vec<QuarantineId> = (0..5).map(|_| QuarantineId::now()).collect();
    for id in ids.iter().rev() {
        quarantine.hold(&verdict(*id), RAW).expect("hold succeeds");
    }

    let listed: Vec<String> = quarantine
        .list()
        .expect("list succeeds")
        .into_iter()
        .map(|verdict| verdict.expect("readable verdict").id)
        .collect();

    let expected: Vec<String> = ids.iter().map(ToString::to_string).collect();
    assert_eq!(listed, expected);
}

#[test]
fn hold_rejects_verdict_without_uuid_v7() {
    let (_dir, quarantine) = open();
    let mut bad = verdict(QuarantineId::now());
    bad.id = "../../outside".to_owned();

    let result = quarantine.hold(&bad, RAW);

    assert!(
        matches!(result, Err(QuarantineError::InvalidId(_))),
        "{result:?}"
    );
    assert!(!quarantine.root().join("outside.eml").exists());
}

#[test]
fn release_moves_files_and_audits() {
    let (_dir, quarantine) = open();
    let id = QuarantineId::now();
    quarantine.hold(&verdict(id), RAW).expect("hold succeeds");

    quarantine.release(id, "alice").expect("release succeeds");

    assert!(!quarantine.message_path(Folder::Held, id).exists());
    assert!(!quarantine.verdict_path(Folder::Held, id).exists());
    assert!(quarantine.message_path(Folder::Released, id).exists());
    assert!(quarantine.verdict_path(Folder::Released, id).exists());
    let audit = fs::read_to_string(quarantine.root().join("audit.log")).expect("audit log");
    assert!(
        audit.contains(&format!(" user=alice command=release id={id} uid=")),
        "{audit}"
    );
    assert_eq!(mode(&quarantine.root().join("audit.log")), 0o600);
}

#[test]
fn delete_moves_files_and_audits() {
    let (_dir, quarantine) = open();
    let id = QuarantineId::now();
    quarantine.hold(&verdict(id), RAW).expect("hold succeeds");

    quarantine.delete(id, "bob smith").expect("delete succeeds");

    assert!(quarantine.message_path(Folder::Deleted, id).exists());
    assert!(quarantine.verdict_path(Folder::Deleted, id).exists());
    assert!(quarantine.list().expect("list succeeds").is_empty());
    let audit = fs::read_to_string(quarantine.root().join("audit.log")).expect("audit log");
    assert!(audit.contains(" user=bob_smith command=delete "), "{audit}");
}

#[test]
fn release_twice_is_not_found() {
    let (_dir, quarantine) = open();
    let id = QuarantineId::now();
    quarantine.hold(&verdict(id), RAW).expect("hold succeeds");
    quarantine
        .release(id, "alice")
        .expect("first release succeeds");

    let second = quarantine.release(id, "alice");

    assert!(
        matches!(second, Err(QuarantineError::NotFound { .. })),
        "{second:?}"
    );
    let audit = fs::read_to_string(quarantine.root().join("audit.log")).expect("audit log");
    assert_eq!(audit.lines().count(), 1);
}

#[test]
fn endpoint_alert_is_audited_with_verdict_id() {
    let (_dir, quarantine) = open();
    let id = QuarantineId::now();

    quarantine
        .audit_endpoint_alert(id, "da637 alert", "<a=b@x.example>")
        .expect("audit succeeds");

    let audit = fs::read_to_string(quarantine.root().join("audit.log")).expect("audit log");
    assert!(
        audit.ends_with(&format!(
            " user=gatehouse command=endpoint-alert id={id} alert=da637_alert message_id=<a_b@x.example>\n"
        )),
        "{audit}"
    );
}

#[test]
fn verdict_without_message_is_deletable() {
    let (_dir, quarantine) = open();
    let id = QuarantineId::now();
    quarantine.hold(&verdict(id), RAW).expect("hold succeeds");
    fs::remove_file(quarantine.message_path(Folder::Held, id)).expect("remove message");

    let loaded = quarantine.load(id);
    let lock = quarantine.lock(id).expect("lock through the verdict");
    let deleted = quarantine.delete(id, "alice");
    drop(lock);

    assert!(
        matches!(loaded, Err(QuarantineError::MessageMissing { .. })),
        "{loaded:?}"
    );
    assert!(deleted.is_ok(), "{deleted:?}");
    assert!(quarantine.verdict_path(Folder::Deleted, id).exists());
    assert!(!quarantine.verdict_path(Folder::Held, id).exists());
    let audit = fs::read_to_string(quarantine.root().join("audit.log")).expect("audit log");
    assert!(
        audit.contains(&format!("command=delete id={id}")),
        "{audit}"
    );
}

#[test]
fn load_returns_message_and_verdict() {
    let (_dir, quarantine) = open();
    let id = QuarantineId::now();
    quarantine.hold(&verdict(id), RAW).expect("hold succeeds");

    let held = quarantine.load(id).expect("load succeeds");

    assert_eq!(held.raw, RAW);
    assert_eq!(held.verdict.envelope.rcpt_to, vec!["alice@example.com"]);
}

#[test]
fn release_is_unlearned_until_marked() {
    let (_dir, quarantine) = open();
    let id = QuarantineId::now();
    quarantine.hold(&verdict(id), RAW).expect("hold succeeds");
    quarantine.release(id, "alice").expect("release succeeds");

    let before = quarantine.unlearned_releases().expect("list succeeds");
    quarantine.mark_release_learned(id).expect("mark succeeds");
    let after = quarantine.unlearned_releases().expect("list succeeds");

    let ids: Vec<QuarantineId> = before.iter().map(|release| release.id).collect();
    assert_eq!(ids, vec![id]);
    let message = before[0].message.as_ref().expect("readable release");
    assert_eq!(message.raw, RAW);
    assert!(after.is_empty());
}

/// Ages a file as if written an hour ago.
fn age(path: &Path) {
    let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    fs::File::options()
        .write(true)
        .open(path)
        .and_then(|file| file.set_modified(hour_ago))
        .expect("set modification time");
}

#[test]
fn sweep_tidies_what_a_crash_left() {
    let root = tempfile::tempdir().expect("temporary folder");
    let quarantine = Quarantine::open(root.path()).expect("open");
    let held = root.path().join("held");
    let minute = std::time::Duration::from_secs(60);

    // A whole entry, which stays.
    let whole = QuarantineId::now();
    quarantine.hold(&verdict(whole), RAW).expect("hold");
    // A hold killed between its two writes, old and recent.
    let orphan = QuarantineId::now();
    fs::write(held.join(format!("{orphan}.eml")), RAW).expect("write");
    fs::set_permissions(
        held.join(format!("{orphan}.eml")),
        fs::Permissions::from_mode(0o644),
    )
    .expect("set mode");
    age(&held.join(format!("{orphan}.eml")));
    let recent = QuarantineId::now();
    fs::write(held.join(format!("{recent}.eml")), RAW).expect("write");
    // A release killed after its verdict moved.
    let released = QuarantineId::now();
    quarantine.hold(&verdict(released), RAW).expect("hold");
    fs::rename(
        quarantine.verdict_path(Folder::Held, released),
        quarantine.verdict_path(Folder::Released, released),
    )
    .expect("move verdict");
    // A write killed before its rename.
    fs::write(held.join(".tmp-x.eml"), RAW).expect("write");
    age(&held.join(".tmp-x.eml"));

    let sweep = quarantine.sweep(minute).expect("sweep");

    assert_eq!(sweep.temporary_removed, 1);
    assert_eq!(sweep.moves_finished, 1);
    assert_eq!(sweep.unfinished_moved, 1);
    assert!(quarantine.message_path(Folder::Held, whole).exists());
    assert!(held.join(format!("{recent}.eml")).exists());
    assert!(
        root.path()
            .join(format!("unfinished/{orphan}.eml"))
            .exists()
    );
    assert!(quarantine.message_path(Folder::Released, released).exists());
    assert!(!held.join(".tmp-x.eml").exists());
    assert_eq!(
        quarantine.sweep(minute).expect("sweep again"),
        Default::default()
    );
}

#[test]
fn sweep_leaves_a_locked_message_alone() {
    let root = tempfile::tempdir().expect("temporary folder");
    let quarantine = Quarantine::open(root.path()).expect("open");
    let id = QuarantineId::now();
    quarantine.hold(&verdict(id), RAW).expect("hold");
    let lock = quarantine.lock(id).expect("lock");
    // A release in progress has moved the verdict and still holds the lock.
    fs::rename(
        quarantine.verdict_path(Folder::Held, id),
        quarantine.verdict_path(Folder::Released, id),
    )
    .expect("move verdict");

    let sweep = quarantine.sweep(std::time::Duration::ZERO).expect("sweep");

    assert_eq!(sweep, Default::default());
    assert!(quarantine.message_path(Folder::Held, id).exists());
    drop(lock);
}
