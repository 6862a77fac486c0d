// Package memory is an in-memory store: the reference adapter, and the
// planner's test double. Hooks let tests inject faults into Put.
package memory

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"

	"github.com/mailferry/mailferry/sink"
	"github.com/mailferry/mailferry/source"
)

type message struct {
	meta source.Message
	body []byte
}

// Store is an in-memory sink.Sink. The zero value is not usable; call New.
type Store struct {
	mu      sync.Mutex
	folders map[string][]*message
	next    int
	// BeforePut, if set, is called at the start of every Put; an error it
	// returns fails that Put.
	BeforePut func(folder string, m source.Message) error
	// AfterPut, if set, is called once a message is stored; an error it
	// returns fails that Put although the message stays stored, as when a
	// server's answer is lost with the connection.
	AfterPut func(folder, id string) error
	// Puts counts Put calls that stored a message.
	Puts int
	// Roles gives folders special-use roles (folder name -> `\Sent`).
	Roles map[string]string
	// made and changes give each folder an identity and a count of
	// additions and removals, for FolderState.
	made, changes map[string]int
	incarnation   int
}

// New returns an empty store with an INBOX.
func New() *Store {
	s := &Store{folders: map[string][]*message{}, made: map[string]int{}, changes: map[string]int{}}
	s.makeFolder("INBOX")
	return s
}

// makeFolder creates folder; s.mu is held.
func (s *Store) makeFolder(folder string) {
	s.folders[folder] = nil
	s.incarnation++
	s.made[folder] = s.incarnation
	s.changes[folder] = 0
}

// Folders implements source.Source.
func (s *Store) Folders(context.Context) ([]source.Folder, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []source.Folder
	for n := range s.folders {
		out = append(out, source.Folder{Name: n, SpecialUse: s.Roles[n]})
	}
	return out, nil
}

// List implements source.Source.
func (s *Store) List(ctx context.Context, folder string, fn func(source.Message) error) error {
	s.mu.Lock()
	msgs, ok := s.folders[folder]
	metas := make([]source.Message, len(msgs))
	for i, m := range msgs {
		metas[i] = m.meta
	}
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("folder %q: %w", folder, source.ErrFolderNotFound)
	}
	return source.Emit(ctx, metas, fn)
}

// Open implements source.Source.
func (s *Store) Open(_ context.Context, m source.Message) (io.ReadCloser, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, x := range s.folders[m.Folder] {
		if x.meta.ID == m.ID {
			return io.NopCloser(bytes.NewReader(x.body)), nil
		}
	}
	return nil, fmt.Errorf("folder %q message %q: %w", m.Folder, m.ID, source.ErrMessageNotFound)
}

// Close implements source.Source.
func (s *Store) Close() error { return nil }

// CreateFolder implements sink.Sink.
func (s *Store) CreateFolder(_ context.Context, folder string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.folders[folder]; !ok {
		s.makeFolder(folder)
	}
	return nil
}

// DeleteFolder removes folder and its messages, as a user would; made
// again, it is another folder (FolderState).
func (s *Store) DeleteFolder(folder string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.folders, folder)
}

// FolderState implements sink.FolderStater.
func (s *Store) FolderState(_ context.Context, folder string) (sink.FolderState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := sink.FolderState{Messages: -1, Next: -1}
	if _, ok := s.folders[folder]; ok {
		st.Identity = "memory " + strconv.Itoa(s.made[folder])
		st.Stamp = strconv.Itoa(s.changes[folder])
	}
	return st, nil
}

// Put implements sink.Sink.
func (s *Store) Put(ctx context.Context, folder string, m source.Message, r io.Reader) (string, error) {
	if s.BeforePut != nil {
		if err := s.BeforePut(folder, m); err != nil {
			return "", err
		}
	}
	src := r
	if m.Size >= 0 {
		src = io.LimitReader(r, m.Size+1)
	}
	body, err := io.ReadAll(src)
	if err != nil {
		return "", err
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if m.Size >= 0 && int64(len(body)) != m.Size {
		return "", fmt.Errorf("read %d bytes, declared %d: %w", len(body), m.Size, source.ErrSizeMismatch)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.next++
	id := strconv.Itoa(s.next)
	meta := source.Message{Folder: folder, ID: id, Flags: source.NormalizeFlags(m.Flags), Date: m.Date, Size: int64(len(body))}
	if _, ok := s.folders[folder]; !ok {
		s.makeFolder(folder)
	}
	s.folders[folder] = append(s.folders[folder], &message{meta: meta, body: body})
	s.changes[folder]++
	s.Puts++
	if s.AfterPut != nil {
		s.mu.Unlock()
		err := s.AfterPut(folder, id)
		s.mu.Lock()
		if err != nil {
			return "", err
		}
	}
	return id, nil
}

// SetFlags implements sink.FlagSetter.
func (s *Store) SetFlags(_ context.Context, folder, id string, flags []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, x := range s.folders[folder] {
		if x.meta.ID == id {
			x.meta.Flags = source.NormalizeFlags(flags)
			return nil
		}
	}
	return fmt.Errorf("folder %q message %q: %w", folder, id, source.ErrMessageNotFound)
}

// Delete implements source.Deleter, for move tests.
func (s *Store) Delete(_ context.Context, msgs []source.Message) error {
	for _, m := range msgs {
		s.Remove(m.Folder, m.ID)
	}
	return nil
}

// Remove deletes a message, as a user or another client would.
func (s *Store) Remove(folder, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.folders[folder] = slices.DeleteFunc(s.folders[folder], func(x *message) bool { return x.meta.ID == id })
	s.changes[folder]++
}

// Count returns the number of messages in folder.
func (s *Store) Count(folder string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.folders[folder])
}

// Bodies returns the contents of folder's messages, in order.
func (s *Store) Bodies(folder string) [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out [][]byte
	for _, x := range s.folders[folder] {
		out = append(out, x.body)
	}
	return out
}

var (
	_ sink.Sink         = (*Store)(nil)
	_ sink.FlagSetter   = (*Store)(nil)
	_ sink.Deleter      = (*Store)(nil)
	_ sink.FolderStater = (*Store)(nil)
)
