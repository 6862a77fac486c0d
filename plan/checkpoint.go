package plan

import (
	"time"

	"github.com/mailferry/mailferry/state"
)

// Checkpoint is what the planner asks of the checkpoint: records of what
// was copied where, the state of folders on both sides, intents for
// --dedup none, and the byte budget. state.Checkpoint is the one
// implementation; the ordering rules the planner relies on are written
// down in state/doc.go.
type Checkpoint interface {
	// Records of copied messages.
	ReadFolder(srcFolder string) (*state.Folder, error)
	Add(e state.Entry) error
	Flush() error
	Forget(srcFolder string, srcIDs []string, dstIDs map[string][]string) error
	DstKeys(dstFolder string) (map[string][]string, error)
	AddDstKeys(dstFolder, dstID string, keys []string)
	RecordedDstIDs(dstFolder string) (map[string]bool, error)

	// Folder states: the source's, to skip unchanged folders, and the
	// destination's, to know when the records can be believed (rule 8).
	FolderState(srcFolder string) ([]byte, error)
	SetFolderState(srcFolder string, state []byte) error
	DstState(dstFolder string) ([]byte, error)
	SetDstState(dstFolder string, state []byte) error

	// Writes announced before they are made (--dedup none, rule 9).
	Intend(srcFolder, srcID, dstFolder string) error
	Intents(srcFolder string) (map[string]string, error)

	// How the previous run ended, and the day's byte budget.
	PreviousRun() (unclean bool, lastCommit time.Time)
	Usage(day string) (int64, error)
	AddUsage(day string, n int64) error
}

var _ Checkpoint = (*state.Checkpoint)(nil)
