// Command tlog-interop checks auditgraph's checkpoints and Merkle proofs with independent
// implementations of the formats: golang.org/x/mod/sumdb/note (the signed-note reference),
// github.com/transparency-dev/formats/log (C2SP tlog-checkpoint) and github.com/transparency-dev/merkle
// (RFC 6962 proofs). tests/test_tlog_interop.py runs it; nothing in auditgraph needs it.
//
// It reads one JSON request on standard input and writes one JSON answer on standard output.
//
// {"op": "verify", "vkey": KEY, "origin": ORIGIN, "checkpoints": [NOTE...],
// "inclusion": [{"checkpoint": I, "index": N, "leaf": HEX, "proof": [HEX...]}...],
// "consistency": [{"old": I, "new": J, "proof": [HEX...]}...]}
// opens each note with the verifier key (as the log's signature, for that origin), then checks each
// inclusion proof of the leaf whose data is LEAF (RFC 6962 leaf hash) against checkpoint I, and each
// consistency proof from checkpoint I to checkpoint J. Every item is answered {"ok": bool, "error": text}
// in request order; checkpoints also with their origin, size and root (hex).
//
// {"op": "sign", "origin": ORIGIN, "skey": KEY (optional: a new key if absent), "leaves": [HEX...],
// "sizes": [N...], "inclusion": [{"index": N, "size": M}...], "consistency": [{"old": N, "new": M}...]}
// builds the tree of those leaf data, signs a checkpoint of each size, and answers with the keys, the
// signed notes and roots by size, and the proofs asked for.
package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"

	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	"golang.org/x/mod/sumdb/note"
)

type hexes []string

func (h hexes) bytes() ([][]byte, error) {
	out := make([][]byte, len(h))
	for i, s := range h {
		b, err := hex.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("hash %d: %v", i, err)
		}
		out[i] = b
	}
	return out, nil
}

func toHex(bs [][]byte) hexes {
	out := make(hexes, len(bs))
	for i, b := range bs {
		out[i] = hex.EncodeToString(b)
	}
	return out
}

type request struct {
	Op          string   `json:"op"`
	VKey        string   `json:"vkey"`
	SKey        string   `json:"skey"`
	Origin      string   `json:"origin"`
	Checkpoints []string `json:"checkpoints"`
	Leaves      hexes    `json:"leaves"`
	Sizes       []uint64 `json:"sizes"`
	Inclusion   []struct {
		Checkpoint int    `json:"checkpoint"`
		Index      uint64 `json:"index"`
		Size       uint64 `json:"size"`
		Leaf       string `json:"leaf"`
		Proof      hexes  `json:"proof"`
	} `json:"inclusion"`
	Consistency []struct {
		Old   uint64 `json:"old"`
		New   uint64 `json:"new"`
		Proof hexes  `json:"proof"`
	} `json:"consistency"`
}

type result struct {
	OK     bool   `json:"ok"`
	Error  string `json:"error,omitempty"`
	Origin string `json:"origin,omitempty"`
	Size   uint64 `json:"size"`
	Root   string `json:"root,omitempty"`
}

func answer(err error) result {
	if err != nil {
		return result{Error: err.Error()}
	}
	return result{OK: true}
}

func verify(req request) (any, error) {
	verifier, err := note.NewVerifier(req.VKey)
	if err != nil {
		return nil, fmt.Errorf("vkey: %v", err)
	}
	checkpoints := make([]*log.Checkpoint, len(req.Checkpoints))
	out := struct {
		Checkpoints []result `json:"checkpoints"`
		Inclusion   []result `json:"inclusion"`
		Consistency []result `json:"consistency"`
	}{}
	for i, text := range req.Checkpoints {
		cp, _, _, err := log.ParseCheckpoint([]byte(text), req.Origin, verifier)
		if err != nil {
			out.Checkpoints = append(out.Checkpoints, answer(err))
			continue
		}
		checkpoints[i] = cp
		out.Checkpoints = append(out.Checkpoints, result{OK: true, Origin: cp.Origin, Size: cp.Size, Root: hex.EncodeToString(cp.Hash)})
	}
	opened := func(i int) (*log.Checkpoint, error) {
		if i < 0 || i >= len(checkpoints) || checkpoints[i] == nil {
			return nil, fmt.Errorf("checkpoint %d did not open", i)
		}
		return checkpoints[i], nil
	}
	for _, c := range req.Inclusion {
		out.Inclusion = append(out.Inclusion, answer(func() error {
			cp, err := opened(c.Checkpoint)
			if err != nil {
				return err
			}
			leaf, err := hex.DecodeString(c.Leaf)
			if err != nil {
				return fmt.Errorf("leaf: %v", err)
			}
			p, err := c.Proof.bytes()
			if err != nil {
				return err
			}
			return proof.VerifyInclusion(rfc6962.DefaultHasher, c.Index, cp.Size, rfc6962.DefaultHasher.HashLeaf(leaf), p, cp.Hash)
		}()))
	}
	for _, c := range req.Consistency {
		out.Consistency = append(out.Consistency, answer(func() error {
			old, err := opened(int(c.Old))
			if err != nil {
				return err
			}
			now, err := opened(int(c.New))
			if err != nil {
				return err
			}
			p, err := c.Proof.bytes()
			if err != nil {
				return err
			}
			return proof.VerifyConsistency(rfc6962.DefaultHasher, old.Size, now.Size, p, old.Hash, now.Hash)
		}()))
	}
	return out, nil
}

func sign(req request) (any, error) {
	skey, vkey := req.SKey, ""
	if skey == "" {
		var err error
		if skey, vkey, err = note.GenerateKey(rand.Reader, req.Origin); err != nil {
			return nil, err
		}
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		return nil, fmt.Errorf("skey: %v", err)
	}
	leaves, err := req.Leaves.bytes()
	if err != nil {
		return nil, err
	}
	tree := testonly.New(rfc6962.DefaultHasher)
	tree.AppendData(leaves...)
	type inclusion struct {
		Index uint64 `json:"index"`
		Size  uint64 `json:"size"`
		Proof hexes  `json:"proof"`
	}
	type consistency struct {
		Old   uint64 `json:"old"`
		New   uint64 `json:"new"`
		Proof hexes  `json:"proof"`
	}
	out := struct {
		SKey        string            `json:"skey"`
		VKey        string            `json:"vkey"`
		Notes       map[string]string `json:"notes"`
		Roots       map[string]string `json:"roots"`
		Inclusion   []inclusion       `json:"inclusion"`
		Consistency []consistency     `json:"consistency"`
	}{SKey: skey, VKey: vkey, Notes: map[string]string{}, Roots: map[string]string{}}
	for _, size := range req.Sizes {
		if size > tree.Size() {
			return nil, fmt.Errorf("size %d: only %d leaves", size, tree.Size())
		}
		cp := log.Checkpoint{Origin: req.Origin, Size: size, Hash: tree.HashAt(size)}
		signed, err := note.Sign(&note.Note{Text: string(cp.Marshal())}, signer)
		if err != nil {
			return nil, err
		}
		key := fmt.Sprint(size)
		out.Notes[key], out.Roots[key] = string(signed), hex.EncodeToString(cp.Hash)
	}
	for _, c := range req.Inclusion {
		if c.Index >= c.Size || c.Size > tree.Size() {
			return nil, fmt.Errorf("no leaf %d in a tree of %d (of %d leaves)", c.Index, c.Size, tree.Size())
		}
		p, err := tree.InclusionProof(c.Index, c.Size)
		if err != nil {
			return nil, err
		}
		out.Inclusion = append(out.Inclusion, inclusion{Index: c.Index, Size: c.Size, Proof: toHex(p)})
	}
	for _, c := range req.Consistency {
		if c.Old > c.New || c.New > tree.Size() {
			return nil, fmt.Errorf("no consistency proof from %d to %d (of %d leaves)", c.Old, c.New, tree.Size())
		}
		p, err := tree.ConsistencyProof(c.Old, c.New)
		if err != nil {
			return nil, err
		}
		out.Consistency = append(out.Consistency, consistency{Old: c.Old, New: c.New, Proof: toHex(p)})
	}
	return out, nil
}

func main() {
	var req request
	dec := json.NewDecoder(os.Stdin)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		fmt.Fprintf(os.Stderr, "tlog-interop: bad request: %v\n", err)
		os.Exit(2)
	}
	var out any
	var err error
	switch req.Op {
	case "verify":
		out, err = verify(req)
	case "sign":
		out, err = sign(req)
	default:
		err = fmt.Errorf("unknown op %q (verify, sign)", req.Op)
	}
	if err == nil {
		err = json.NewEncoder(os.Stdout).Encode(out)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "tlog-interop: %v\n", err)
		os.Exit(1)
	}
}
