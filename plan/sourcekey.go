package plan

import (
	"context"

	"github.com/mailferry/mailferry/internal/header"
	"github.com/mailferry/mailferry/source"
)

// sourceKey returns the dedup key of a source message and the keys to
// record for its copy.
func (e *engine) sourceKey(ctx context.Context, m *source.Message) (key string, keys []string, err error) {
	switch e.opt.Dedup {
	case DedupNone:
		return sourceKeyNone(*m), nil, nil
	case DedupContent:
		c, err := e.contentKey(ctx, e.src, *m)
		if err != nil {
			return "", nil, err
		}
		keys = []string{c}
		if m.MessageIDKnown {
			keys = append(keys, msgIDPrefix+header.NormalizeMessageID(m.MessageID))
		}
		return c, keys, nil
	}
	k, err := e.messageIDKeys(ctx, e.src, m)
	if err != nil {
		return "", nil, err
	}
	return k[0], k, nil
}

// sourceKeyNone is a message's key with DedupNone: itself.
func sourceKeyNone(m source.Message) string { return "s:" + m.Folder + "\x00" + m.ID }

// messageIDKeys returns, for DedupMessageID, the keys of a message: its
// Message-ID key, or the marker "m:" (it has none) followed by its content
// key.
//
// A Message-ID read from the content is kept in m, so errors and logs can
// name the message by it.
func (e *engine) messageIDKeys(ctx context.Context, s source.Source, m *source.Message) ([]string, error) {
	raw, found := m.MessageID, m.MessageIDKnown
	if !m.MessageIDKnown {
		r, err := s.Open(ctx, *m)
		if err != nil {
			return nil, err
		}
		raw, found, err = header.MessageID(r)
		r.Close()
		if err != nil {
			return nil, err
		}
		m.MessageID, m.MessageIDKnown = raw, true
	}
	if k := MessageIDKey(raw); found && k != "" {
		return []string{k}, nil
	}
	c, err := e.contentKey(ctx, s, *m)
	if err != nil {
		return nil, err
	}
	return []string{c, msgIDPrefix}, nil
}

func (e *engine) contentKey(ctx context.Context, s source.Source, m source.Message) (string, error) {
	r, err := s.Open(ctx, m)
	if err != nil {
		return "", err
	}
	defer r.Close()
	return ContentKey(r)
}
