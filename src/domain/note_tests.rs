//! Signed notes against the published example of `golang.org/x/mod/sumdb/note`, and checkpoints.

use super::*;

const VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const SKEY: &str = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const TEXT: &str =
    "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const SIG: &str = "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

#[test]
fn signing_reproduces_the_go_reference_note_byte_for_byte() {
    let signer = NoteSigner::parse(SKEY).unwrap();
    assert_eq!(signer.verifier().to_string(), VKEY);
    assert_eq!(signer.to_private_string(), SKEY);
    let note = signer.sign(TEXT).unwrap();
    assert_eq!(note, format!("{TEXT}\n{SIG}"));
    let verifier = NoteVerifier::parse(VKEY).unwrap();
    assert_eq!(verifier.open(&note).unwrap(), TEXT);
}

#[test]
fn altered_notes_and_other_keys_are_refused() {
    let verifier = NoteVerifier::parse(VKEY).unwrap();
    let note = format!("{TEXT}\n{SIG}");
    let altered = note.replace("cryptography", "cryptographY");
    assert!(matches!(verifier.open(&altered), Err(NoteError::BadSignature(_))));
    let other = NoteSigner::from_seed("PeterNeumann", [7; 32]).unwrap();
    let forged = other.sign(TEXT).unwrap();
    assert!(matches!(verifier.open(&forged), Err(NoteError::Unsigned(_))));
    assert!(verifier.open(TEXT).is_err());
    // A cosignature by an unknown key next to the real one is ignored.
    let cosigned = format!("{note}{}", &forged[TEXT.len() + 1..]);
    assert_eq!(verifier.open(&cosigned).unwrap(), TEXT);
}

#[test]
fn mangled_verifier_keys_are_refused() {
    let b = VKEY.as_bytes();
    for i in 0..b.len() {
        let mut m = b.to_vec();
        m[i] = m[i].wrapping_add(1);
        if let Ok(s) = String::from_utf8(m) {
            assert!(NoteVerifier::parse(&s).is_err(), "{s}");
        }
    }
    assert!(NoteVerifier::parse(&VKEY[..VKEY.len() - 4]).is_err());
    assert!(NoteSigner::from_seed("has space", [1; 32]).is_err());
    assert!(NoteSigner::from_seed("has+plus", [1; 32]).is_err());
}

#[test]
fn checkpoints_round_trip_and_reject_malformed_bodies() {
    let cp = Checkpoint { origin: "safeguard.example/registry".into(), size: 12, root: [9; 32] };
    assert_eq!(cp.body(), "safeguard.example/registry\n12\nCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=\n");
    assert_eq!(Checkpoint::parse(&cp.body()).unwrap(), cp);
    let signer = NoteSigner::from_seed("safeguard.example/registry", [3; 32]).unwrap();
    let note = signer.sign(&cp.body()).unwrap();
    assert_eq!(Checkpoint::open(&note, &signer.verifier()).unwrap(), cp);
    for bad in [
        "o\n012\nCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=\n",
        "o\n-1\nCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=\n",
        "o\n1\nCQkJ\n",
        "\n1\nCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=\n",
        "o\n1\nCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=",
    ] {
        assert!(Checkpoint::parse(bad).is_err(), "{bad:?}");
    }
}
