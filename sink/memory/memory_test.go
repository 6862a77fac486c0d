package memory

import (
	"testing"

	"github.com/mailferry/mailferry/sink"
	"github.com/mailferry/mailferry/sink/sinktest"
	"github.com/mailferry/mailferry/source"
)

func TestConformance(t *testing.T) {
	var last *Store
	sinktest.Run(t, sinktest.Opt{
		New:    func(t *testing.T) sink.Sink { last = New(); return last },
		Reopen: func(t *testing.T) sink.Sink { return last },
		Remove: func(t *testing.T, m source.Message) { last.Remove(m.Folder, m.ID) },
	})
}
