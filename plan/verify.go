package plan

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/mailferry/mailferry/sink"
	"github.com/mailferry/mailferry/source"
)

// VerifyOptions tune Verify.
type VerifyOptions struct {
	// Dedup is the job's mode: messages are matched as the copy matched
	// them (DedupNone matches by content, there being nothing else).
	Dedup Dedup
	// Deep also compares the SHA-256 of every body (line endings folded).
	Deep bool
	// Folders and Filter are the copy's: verify checks what a copy with
	// the same settings promised (a --prefix, a --folder, a --since).
	Folders FolderRules
	Filter  Filter
	Log     *slog.Logger
}

// VerifySummary is the outcome of Verify, also printed by --json.
type VerifySummary struct {
	Present        int             `json:"present"`
	Filtered       int             `json:"filtered"`
	Missing        int             `json:"missing"`
	Differing      int             `json:"differing"`
	Extra          int             `json:"extra"`
	Folders        []*VerifyFolder `json:"folders"`
	Errors         []ErrorEntry    `json:"errors"`
	ElapsedSeconds float64         `json:"elapsed_seconds"`
}

// VerifyFolder is the outcome for one source folder.
type VerifyFolder struct {
	Name        string `json:"name"`
	Destination string `json:"destination"`
	MappedBy    string `json:"mapped_by,omitempty"`
	Messages    int    `json:"messages"`
	Present     int    `json:"present"`
	Filtered    int    `json:"filtered,omitempty"`
	Missing     int    `json:"missing"`
	Differing   int    `json:"differing"`
	// Extra counts destination messages beyond the source's count for
	// their key: copies made twice, or mail that was there before.
	Extra int    `json:"extra"`
	Error string `json:"error,omitempty"`
}

// Complete reports whether every source message is at the destination.
func (s *VerifySummary) Complete() bool {
	if s.Missing > 0 || s.Differing > 0 {
		return false
	}
	for _, f := range s.Folders {
		if f.Error != "" {
			return false
		}
	}
	return true
}

// Verify checks that every message of src is at dst, folder by folder
// (with the copy's folder mapping). It only reads: IMAP folders are
// examined and bodies fetched with PEEK, and no checkpoint is involved.
func Verify(ctx context.Context, src, dst source.Source, opt VerifyOptions) (*VerifySummary, error) {
	start := time.Now()
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	dedup := opt.Dedup
	if dedup == "" {
		dedup = DedupMessageID
	}
	if dedup == DedupNone {
		dedup = DedupContent
	}
	e := &engine{src: src, dst: sink.ReadOnly(dst), opt: Options{Dedup: dedup, Folders: opt.Folders, Filter: opt.Filter, Log: opt.Log}}
	sum := &VerifySummary{Folders: []*VerifyFolder{}, Errors: []ErrorEntry{}}
	sel, err := newFolderSelector(opt.Folders)
	if err != nil {
		return sum, err
	}
	all, err := src.Folders(ctx)
	if err != nil {
		return sum, fmt.Errorf("list source folders: %w", err)
	}
	if len(all) == 0 {
		return sum, fmt.Errorf("%w: the source holds no mailbox", ErrNothingSelected)
	}
	if p := sel.unmatched(all); p != "" {
		return sum, fmt.Errorf("%w: the folder pattern %q matches none of the source's folders: %s", ErrNothingSelected, p, folderList(all))
	}
	var folders []source.Folder
	for _, f := range all {
		if sel.selected(f) {
			folders = append(folders, f)
		}
	}
	slices.SortFunc(folders, func(a, b source.Folder) int { return strings.Compare(a.Name, b.Name) })
	listed, lerr := e.listDstFolders(ctx)
	mapping, err := e.mapFolders(ctx, folders, listed, lerr)
	if err != nil {
		return sum, err
	}
	for _, f := range folders {
		if err := ctx.Err(); err != nil {
			return sum, ErrInterrupted
		}
		to := mapping[f.Name]
		vf := &VerifyFolder{Name: f.Name, Destination: to.name, MappedBy: to.why}
		sum.Folders = append(sum.Folders, vf)
		if err := e.verifyFolder(ctx, vf, opt.Deep, sum); err != nil {
			if ctx.Err() != nil {
				return sum, ErrInterrupted
			}
			vf.Error = err.Error()
			sum.Errors = append(sum.Errors, ErrorEntry{Folder: f.Name, Error: err.Error()})
		}
		sum.Present += vf.Present
		sum.Filtered += vf.Filtered
		sum.Missing += vf.Missing
		sum.Differing += vf.Differing
		sum.Extra += vf.Extra
	}
	sum.ElapsedSeconds = time.Since(start).Seconds()
	return sum, nil
}

type verifyEntry struct {
	m       source.Message
	content string // content key, read when needed
	used    bool
}

func (e *engine) verifyFolder(ctx context.Context, vf *VerifyFolder, deep bool, sum *VerifySummary) error {
	var srcMsgs, dstMsgs []source.Message
	if err := e.src.List(ctx, vf.Name, func(m source.Message) error { srcMsgs = append(srcMsgs, m); return nil }); err != nil {
		return fmt.Errorf("list source: %w", err)
	}
	if e.opt.Filter.Active() {
		kept := srcMsgs[:0]
		for _, m := range srcMsgs {
			skip, decided := e.opt.Filter.skips(m)
			if !decided {
				if d, ok := e.src.(source.Describer); ok {
					if err := d.Describe(ctx, &m); err == nil {
						skip, _ = e.opt.Filter.skips(m)
					}
				}
			}
			if skip {
				vf.Filtered++
				continue
			}
			kept = append(kept, m)
		}
		srcMsgs = kept
	}
	vf.Messages = len(srcMsgs)
	err := e.dst.List(ctx, vf.Destination, func(m source.Message) error { dstMsgs = append(dstMsgs, m); return nil })
	if err != nil && !errors.Is(err, source.ErrFolderNotFound) {
		return fmt.Errorf("list destination %q: %w", vf.Destination, err)
	}
	// What the destination holds, by key.
	have := map[string][]*verifyEntry{}
	for _, m := range dstMsgs {
		key, err := e.verifyKey(ctx, e.dst, &m)
		if errors.Is(err, source.ErrMessageNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("read destination message %s: %w", m.ID, err)
		}
		have[key] = append(have[key], &verifyEntry{m: m})
	}
	// Keys several source messages share (one Message-ID, other content:
	// each a message of its own, see sameid.go) are checked by content
	// even without deep, or one copy would seem to stand for all.
	keys := make([]string, len(srcMsgs))
	shared := map[string]int{}
	for i := range srcMsgs {
		key, err := e.verifyKey(ctx, e.src, &srcMsgs[i])
		if errors.Is(err, source.ErrMessageNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("read source message %s: %w", srcMsgs[i].ID, err)
		}
		keys[i] = key
		shared[key]++
	}
	wanted := map[string]int{}
	for i, m := range srcMsgs {
		key := keys[i]
		if key == "" {
			vf.Messages--
			continue
		}
		wanted[key]++
		cands := have[key]
		if len(cands) == 0 {
			vf.Missing++
			sum.Errors = append(sum.Errors, ErrorEntry{Folder: vf.Name, Message: describe(m), Error: "missing at the destination"})
			continue
		}
		if !deep && shared[key] < 2 {
			vf.Present++
			continue
		}
		c, err := e.contentKey(ctx, e.src, m)
		if err != nil {
			return fmt.Errorf("read source message %s: %w", m.ID, err)
		}
		for _, x := range cands {
			if x.content == "" {
				if x.content, err = e.contentKey(ctx, e.dst, x.m); err != nil {
					return fmt.Errorf("read destination message %s: %w", x.m.ID, err)
				}
			}
		}
		i := slices.IndexFunc(cands, func(x *verifyEntry) bool { return x.content == c && !x.used })
		if i < 0 {
			i = slices.IndexFunc(cands, func(x *verifyEntry) bool { return x.content == c })
		}
		if i < 0 {
			vf.Differing++
			sum.Errors = append(sum.Errors, ErrorEntry{Folder: vf.Name, Message: describe(m), Error: "at the destination with different content"})
			continue
		}
		cands[i].used = true
		vf.Present++
	}
	for key, ents := range have {
		if extra := len(ents) - wanted[key]; extra > 0 {
			vf.Extra += extra
		}
	}
	return nil
}

// verifyKey is the key a message was copied under (see sourceKey).
func (e *engine) verifyKey(ctx context.Context, s source.Source, m *source.Message) (string, error) {
	if d, ok := s.(source.Describer); ok {
		if err := d.Describe(ctx, m); err != nil {
			return "", err
		}
	}
	if e.opt.Dedup == DedupContent {
		return e.contentKey(ctx, s, *m)
	}
	k, err := e.messageIDKeys(ctx, s, m)
	if err != nil {
		return "", err
	}
	return k[0], nil
}
