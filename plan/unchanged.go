package plan

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/mailferry/mailferry/source"
)

// folderState is what the checkpoint keeps of a source folder the last run
// completed: the source's state token, the settings that decide what goes
// where, and what was counted. A folder whose state and settings are the
// same again is not listed (if its destination kept what was recorded).
type folderState struct {
	Token    string `json:"token"`
	To       string `json:"to"`
	Dedup    Dedup  `json:"dedup"`
	Filter   string `json:"filter"`
	Mirror   bool   `json:"mirror"`
	Messages int    `json:"messages"`
	Filtered int    `json:"filtered"`
}

// sameSource reports whether s describes the same source state, copied
// with the same settings, as o; the counts are not compared.
func (s folderState) sameSource(o folderState) bool {
	s.Messages, s.Filtered, o.Messages, o.Filtered = 0, 0, 0, 0
	return s == o
}

// unchanged skips a folder that has not changed since a run that left it
// complete: the source's state token (source.Stater, taken before the
// listing) and the run's settings that decide what is copied where must
// be those the checkpoint recorded then. It returns the token to record
// if this run completes the folder. A move lists always: a deletion that
// failed last time must be tried again.
func (e *engine) unchanged(ctx context.Context, f source.Folder, to folderMap) (now folderState, skipped bool, err error) {
	st, ok := e.src.(source.Stater)
	if !ok || e.opt.DeleteAfterCopy {
		return folderState{}, false, nil
	}
	// The destination is asked whether it kept what was recorded while the
	// source is asked its state: two servers, a round trip each, and the
	// folder needs both answers whichever way it goes (planFolder asks
	// dstKept too, and finds this one's answer kept).
	keptC := make(chan bool, 1)
	go func() { keptC <- e.dstKept(ctx, to.name) }()
	tok, err := st.State(ctx, f.Name)
	kept := <-keptC
	if err != nil || tok == "" {
		return folderState{}, false, nil // not fatal: list as usual
	}
	now = folderState{Token: tok, To: to.name, Dedup: e.opt.Dedup, Filter: fmt.Sprintf("%+v", e.opt.Filter), Mirror: e.opt.MirrorDeletes}
	raw, err := e.ckpt.FolderState(f.Name)
	if err != nil {
		return folderState{}, false, fmt.Errorf("read checkpoint: %w", err)
	}
	var saved folderState
	if json.Unmarshal(raw, &saved) != nil || !saved.sameSource(now) || !kept {
		return now, false, nil
	}
	messages, filtered := saved.Messages, saved.Filtered
	fs := &FolderSummary{Name: f.Name, Destination: to.name, MappedBy: to.why, Messages: messages, Counts: Counts{AlreadyPresent: messages - filtered, Filtered: filtered}}
	e.mu.Lock()
	e.sum.Folders = append(e.sum.Folders, fs)
	e.mu.Unlock()
	e.opt.Progress.Settled(messages)
	e.opt.Log.Debug("folder unchanged since the last complete run; not listed", "folder", f.Name, "state", tok)
	return folderState{}, true, nil
}

// saveUnchanged records that the folder is complete as of token, if the
// run left nothing of it undone. SetFolderState flushes the records first,
// so the state never runs ahead of them.
func (e *engine) saveUnchanged(f source.Folder, now folderState) error {
	if e.opt.DryRun {
		return nil
	}
	e.mu.Lock()
	var fs *FolderSummary
	for _, s := range e.sum.Folders {
		if s.Name == f.Name {
			fs = s
		}
	}
	e.mu.Unlock()
	if fs == nil || fs.Failed > 0 || fs.Error != "" || e.sum.BudgetReached {
		return nil
	}
	now.Messages, now.Filtered = fs.Messages, fs.Filtered
	b, err := json.Marshal(now)
	if err != nil {
		return err
	}
	return e.ckpt.SetFolderState(f.Name, b)
}
