"""Signed notes, log keys and checkpoints (lineage.checkpoint) against the signed-note format's published
test vectors, and every malformed one refused with a message that says what is wrong.

The vectors are golang.org/x/mod/sumdb/note's (the format's reference implementation): the key
"PeterNeumann" (its signer and verifier key texts), a second key "EnochRoot", and the note they sign.
Ed25519 is deterministic, so our signature with that key must be byte-identical to theirs. The probes
of mangled keys and malformed notes are theirs too; tests/test_tlog_interop.py runs the Go package itself.
"""

from __future__ import annotations

import base64

import pytest

from lineage.checkpoint import (
    Checkpoint,
    CheckpointError,
    LogKey,
    Verifier,
    key_hash,
    open_note,
    read_checkpoint,
    sign_checkpoint,
    sign_note,
    split_note,
)

PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
PETER_SIG = (
    "\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
ENOCH_SIG = (
    "\u2014 EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"
)
SIGNED = TEXT + "\n" + PETER_SIG

ROOT = bytes.fromhex("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")  # RFC 6962, 8 leaves


@pytest.fixture
def peter() -> Verifier:
    return Verifier.parse(PETER_VKEY)


def refused(match: str):
    return pytest.raises(CheckpointError, match=match)


# --- the published vectors ------------------------------------------------------------------------------


def test_the_reference_verifier_key_parses_and_writes_back_the_same():
    verifier = Verifier.parse(PETER_VKEY)
    assert (verifier.name, verifier.hash.hex()) == ("PeterNeumann", "c74f20a3")
    assert verifier.text() == PETER_VKEY
    assert Verifier.parse(ENOCH_VKEY).text() == ENOCH_VKEY


def test_the_reference_signer_key_gives_the_reference_verifier_key_and_writes_back_the_same():
    key = LogKey.parse(PETER_SKEY)
    assert key.text() == PETER_SKEY
    assert key.verifier() == Verifier.parse(PETER_VKEY)


def test_our_signature_with_the_reference_key_is_byte_identical_to_the_reference_note():
    assert sign_note(TEXT, LogKey.parse(PETER_SKEY)) == SIGNED


def test_the_reference_note_verifies_with_the_reference_key(peter):
    assert open_note(SIGNED, peter) == TEXT


def test_a_note_signed_by_two_keys_opens_with_either(peter):
    note = TEXT + "\n" + PETER_SIG + ENOCH_SIG
    assert open_note(note, peter) == TEXT
    assert open_note(note, Verifier.parse(ENOCH_VKEY)) == TEXT
    _, signatures = split_note(note)
    assert [(s.name, s.hash.hex()) for s in signatures] == [("PeterNeumann", "c74f20a3"), ("EnochRoot", "af0cfe78")]


def test_repeated_signatures_and_another_keys_bad_one_do_not_matter(peter):
    enoch_altered = ENOCH_SIG[:47] + "ABCD" + ENOCH_SIG[47:]  # 60 bytes in: the em dash is 3
    note = TEXT + "\n" + PETER_SIG + PETER_SIG + ENOCH_SIG + ENOCH_SIG + enoch_altered
    assert open_note(note, peter) == TEXT


def test_every_part_of_the_reference_verifier_key_alone_is_refused():
    """sumdb/note TestNewVerifier: every proper substring, and every one-byte change, of the key."""
    for i in range(len(PETER_VKEY) + 1):
        for j in range(i + 1, len(PETER_VKEY) + 1):
            if (i, j) != (0, len(PETER_VKEY)):
                with pytest.raises(CheckpointError):
                    Verifier.parse(PETER_VKEY[i:j])
    for i in range(len(PETER_VKEY)):
        with pytest.raises(CheckpointError):
            Verifier.parse(PETER_VKEY[:i] + chr(ord(PETER_VKEY[i]) + 1) + PETER_VKEY[i + 1 :])


def test_every_part_of_the_reference_signer_key_alone_is_refused():
    """sumdb/note TestNewSigner."""
    for i in range(len(PETER_SKEY) + 1):
        for j in range(i + 1, len(PETER_SKEY) + 1):
            if (i, j) != (0, len(PETER_SKEY)):
                with pytest.raises(CheckpointError):
                    LogKey.parse(PETER_SKEY[i:j])
    for i in range(len(PETER_SKEY)):
        with pytest.raises(CheckpointError):
            LogKey.parse(PETER_SKEY[:i] + chr(ord(PETER_SKEY[i]) + 1) + PETER_SKEY[i + 1 :])


@pytest.mark.parametrize(
    "vkey",
    [
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",  # wrong length, hash adjusted
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # unknown algorithm, hash adjusted
    ],
)
def test_a_verifier_key_of_another_algorithm_or_length_is_refused(vkey):
    with refused("not an Ed25519 key"):
        Verifier.parse(vkey)


@pytest.mark.parametrize(
    "note",
    [
        TEXT,
        TEXT + "\n",
        TEXT + "\n" + PETER_SIG[:-1],
        TEXT
        + "\n\u2014 Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=",
    ],
    ids=["no signatures", "no signature lines", "no final newline", "no final newline, bad name"],
)
def test_a_note_without_a_signature_block_ending_in_a_newline_is_refused(note, peter):
    with refused("not a signed note: no empty line before the signatures, or no final newline"):
        open_note(note, peter)


def test_a_line_after_the_signatures_is_refused(peter):
    with refused("not a signature line: 'Unexpected line.'"):
        open_note(SIGNED + "Unexpected line.\n", peter)


def test_more_than_100_signatures_are_refused(peter):
    open_note(TEXT + "\n" + PETER_SIG * 100, peter)
    with refused("a signed note has between 1 and 100 signatures"):
        open_note(TEXT + "\n" + PETER_SIG * 101, peter)


def test_an_altered_signature_is_refused(peter):
    raw = SIGNED.encode()
    at = len(TEXT) + 1 + 60  # sumdb/note TestOpen: "ABCD" inserted 60 bytes into the signature line
    with refused("the signature by PeterNeumann does not verify: the note was altered"):
        open_note((raw[:at] + b"ABCD" + raw[at:]).decode(), peter)


def test_an_altered_text_is_refused(peter):
    with refused("the signature by PeterNeumann does not verify"):
        open_note(SIGNED.replace("problem,", "problems,"), peter)


def test_an_extra_blank_line_before_the_signatures_is_refused(peter):
    """The last blank line separates: the text then ends in an empty line, which was not signed."""
    with refused("the signature by PeterNeumann does not verify"):
        open_note(TEXT + "\n\n" + PETER_SIG, peter)


def test_a_blank_line_between_signatures_is_refused(peter):
    with refused("not signed by log key PeterNeumann"):
        open_note(TEXT + "\n" + PETER_SIG + "\n" + ENOCH_SIG, peter)


@pytest.mark.parametrize(
    ("signature", "message"),
    [
        (PETER_SIG.replace("PeterNeumann", "CarmenSandiego"), r"signed by CarmenSandiego\)"),
        (PETER_SIG.replace("x08g", "xxxx"), r"not signed by log key PeterNeumann\+c74f20a3 \(signed by PeterNeumann\)"),
    ],
    ids=["other name", "other key hash"],
)
def test_a_note_signed_under_another_name_or_key_hash_is_refused_naming_both(peter, signature, message):
    with refused(message):
        open_note(TEXT + "\n" + signature, peter)


@pytest.mark.parametrize(
    ("signature", "message"),
    [
        ("\u2014 PeterNeumann x08go!ZJ=\n", "signature by PeterNeumann: not standard base64"),
        ("\u2014 PeterNeumann x08go_ZJkuBS9UG-Sffc=\n", "signature by PeterNeumann: not standard base64"),
        ("\u2014 PeterNeumann x08go/ZJkuBS9UG/Sff\n", "signature by PeterNeumann: not standard base64"),
        ("\u2014 PeterNeumann x08gow==\n", "signature by PeterNeumann: too short"),
        ("\u2014 PeterNeumann \n", "signature by PeterNeumann: too short"),
        ("- PeterNeumann x08go/ZJkuBS9UG/Sffc=\n", "not a signature line"),
        ("\u2014 Peter+Neumann x08go/ZJkuBS9UG/Sffc=\n", "key name 'Peter\\+Neumann'"),
    ],
    ids=["bad base64", "url-safe base64", "unpadded", "four bytes", "empty", "hyphen, not em dash", "plus in name"],
)
def test_a_malformed_signature_line_is_refused_saying_what_is_wrong(peter, signature, message):
    with refused(message):
        open_note(TEXT + "\n" + signature, peter)


def test_a_note_with_a_control_character_is_refused_as_the_reference_refuses_it():
    key = LogKey.parse(PETER_SKEY)
    with refused("control character"):  # never written...
        sign_note("tab\there\n", key)
    signed = sign_note("tab here\n", key).replace("tab here", "tab\there")
    with refused("control character"):  # ...nor read
        open_note(signed, key.verifier())


# --- keys -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("vkey", "message"),
    [
        ("PeterNeumann", r"a log public key is <name>\+<8 hex digits>\+<base64 key>"),
        ("PeterNeumann+c74f20a3", r"a log public key is"),
        ("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq!LDE4izWy10TW", "log public key: not standard base64"),
        ("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq_LDE4izWy10TW", "log public key: not standard base64"),
        ("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "its hash c74f20a4 does not match"),
        ("EnochRoot+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "log public key EnochRoot: its hash"),
        ("Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "without spaces"),
        ("+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "key name '': must be non-empty"),
    ],
    ids=["name only", "no key", "bad base64", "url-safe base64", "wrong hash", "other name", "space", "no name"],
)
def test_a_malformed_verifier_key_is_refused_saying_what_is_wrong(vkey, message):
    with refused(message):
        Verifier.parse(vkey)


@pytest.mark.parametrize(
    ("skey", "message"),
    [
        ("PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz", r"a log key is PRIVATE\+KEY\+<name>"),
        (PETER_VKEY, r"a log key is PRIVATE\+KEY"),
        (
            "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr!Y7hfZx09iUvxdXHKDFz",
            "log key: not standard base64",
        ),
        (
            "PRIVATE+KEY+PeterNeumann+c74f20a4+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
            "its hash c74f20a4 does not",
        ),
        ("PRIVATE+KEY+PeterNeumann+c74f20a3+AoEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz", "not an Ed25519 key"),
    ],
    ids=["no PRIVATE+KEY", "a public key", "bad base64", "wrong hash", "other algorithm"],
)
def test_a_malformed_signer_key_is_refused_saying_what_is_wrong(skey, message):
    with refused(message):
        LogKey.parse(skey)


def test_a_key_name_ending_in_a_newline_is_refused():
    """Go's isValidName refuses any white space in a name; a regular expression's $ matches before a final
    newline, which would let one through into a key file and a signature line."""
    with refused("must be non-empty, without spaces"):
        LogKey.generate("auditgraph.example/log\n")
    public = Verifier.parse(PETER_VKEY).public
    name = "PeterNeumann\n"
    vkey = f"{name}+{key_hash(name, public).hex()}+{b64(bytes([1]) + public)}"
    with refused("must be non-empty, without spaces"):
        Verifier.parse(vkey)


def test_a_generated_key_signs_notes_its_verifier_opens_and_another_key_does_not():
    key = LogKey.generate("auditgraph.example/prod")
    again = LogKey.parse(key.text())
    assert again == key and again.verifier() == Verifier.parse(key.verifier().text())
    note = sign_note("hello\n", key)
    assert open_note(note, key.verifier()) == "hello\n"
    with refused("not signed by log key auditgraph.example/prod"):
        open_note(note, LogKey.generate("auditgraph.example/prod").verifier())


@pytest.mark.parametrize("text", ["no final newline", "an empty line\n\nin the text\n"])
def test_a_note_text_that_cannot_be_signed_is_refused(text):
    with refused("a note's text ends with one newline and has no empty line"):
        sign_note(text, LogKey.parse(PETER_SKEY))


# --- checkpoints (C2SP tlog-checkpoint) --------------------------------------------------------------------


def test_a_checkpoint_is_origin_size_and_base64_root_then_extension_lines():
    checkpoint = Checkpoint("example.com/log", 8, ROOT, ("ext one",))
    assert checkpoint.text() == f"example.com/log\n8\n{base64.b64encode(ROOT).decode()}\next one\n"
    assert Checkpoint.parse(checkpoint.text()) == checkpoint


def test_a_signed_checkpoint_reads_back_only_with_its_key():
    key = LogKey.parse(PETER_SKEY)
    note = sign_checkpoint(Checkpoint("PeterNeumann", 8, ROOT), key)
    assert note.startswith(f"PeterNeumann\n8\n{base64.b64encode(ROOT).decode()}\n\n\u2014 PeterNeumann ")
    assert read_checkpoint(note, key.verifier()) == Checkpoint("PeterNeumann", 8, ROOT)
    with refused("not signed by log key EnochRoot"):
        read_checkpoint(note, Verifier.parse(ENOCH_VKEY))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f"example.com/log\n8\n{b64(ROOT)}", "a checkpoint is an origin line, a size line and a root hash line"),
        ("example.com/log\n8\n", "a checkpoint is an origin line"),
        (f"\n8\n{b64(ROOT)}\n", r"bad origin or size line \('', '8'\)"),
        (f"example.com/log\n-8\n{b64(ROOT)}\n", r"bad origin or size line \('example.com/log', '-8'\)"),
        (f"example.com/log\n+8\n{b64(ROOT)}\n", "bad origin or size line"),
        (f"example.com/log\n08\n{b64(ROOT)}\n", "bad origin or size line"),
        (f"example.com/log\n8.0\n{b64(ROOT)}\n", "bad origin or size line"),
        (f"example.com/log\n 8\n{b64(ROOT)}\n", "bad origin or size line"),
        (f"example.com/log\n0x8\n{b64(ROOT)}\n", "bad origin or size line"),
        (f"example.com/log\n\u0668\n{b64(ROOT)}\n", "bad origin or size line"),  # an Arabic-Indic eight
        (f"example.com/log\n{10**19}\n{b64(ROOT)}\n", "bad origin or size line"),  # beyond a signed 64-bit size
        (f"example.com/log\n8\n{b64(ROOT[:31])}\n", "checkpoint root hash: not 32 bytes"),
        (f"example.com/log\n8\n{b64(ROOT + b'x')}\n", "checkpoint root hash: not 32 bytes"),
        (f"example.com/log\n8\n{ROOT.hex()}\n", "checkpoint root hash: not 32 bytes"),
        (f"example.com/log\n8\n{b64(ROOT)[:-1]}\n", "checkpoint root hash: not standard base64"),
        (
            f"example.com/log\n8\n{base64.urlsafe_b64encode(ROOT).decode()}\n",
            "checkpoint root hash: not standard base64",
        ),
    ],
    ids=[
        "no final newline",
        "no root line",
        "empty origin",
        "negative size",
        "plus sign",
        "leading zero",
        "decimal point",
        "leading space",
        "hex size",
        "non-ASCII digit",
        "size too large",
        "31-byte root",
        "33-byte root",
        "hex root",
        "unpadded root",
        "url-safe root",
    ],
)
def test_a_malformed_checkpoint_is_refused_saying_what_is_wrong(text, message):
    with refused(message):
        Checkpoint.parse(text)
