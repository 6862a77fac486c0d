package plan

// Summary is the outcome of a run, also printed by --json.
type Summary struct {
	DryRun bool `json:"dry_run,omitempty"`
	// Counts is the sum of the folders' counts, taken once at the end.
	Counts
	// FailedFolders counts folders that failed as a whole (refused,
	// unreadable): their messages are not in Failed, which counts the
	// messages that were tried.
	FailedFolders int `json:"failed_folders"`
	Vanished      int `json:"vanished"`
	Deleted       int `json:"deleted,omitempty"`
	// MirrorDeleted counts copies deleted at the destination because their
	// source message is gone (mirror).
	MirrorDeleted int `json:"mirror_deleted,omitempty"`
	// BudgetReached: the run stopped at Limits.ByteBudget, cleanly; the
	// rest is for the next day's run.
	BudgetReached bool `json:"budget_reached,omitempty"`
	// KeptAtSource counts messages a move left at the source because they
	// matched the destination by Message-ID only, not byte for byte.
	KeptAtSource   int              `json:"kept_at_source,omitempty"`
	Retries        int              `json:"retries"`
	Folders        []*FolderSummary `json:"folders"`
	ElapsedSeconds float64          `json:"elapsed_seconds"`
	Errors         []ErrorEntry     `json:"errors"`
	// Warnings name messages that were copied with less than they carry
	// (keywords a Maildir folder has no letter left for).
	Warnings []ErrorEntry `json:"warnings,omitempty"`
}

// Counts are what happened to a folder's messages; the run's are their sum.
type Counts struct {
	Copied            int `json:"copied"`
	DuplicatesSkipped int `json:"duplicates_skipped"`
	AlreadyPresent    int `json:"already_present"`
	// SameMessageID counts messages that share a Message-ID with another
	// message of their folder but differ in content: each is a message of
	// its own, copied or matched at the destination.
	SameMessageID int `json:"same_message_id_other_content"`
	// Recopied counts the messages among Copied that the checkpoint
	// recorded as copied but the destination no longer held.
	Recopied     int `json:"recopied"`
	Failed       int `json:"failed"`
	FlagsUpdated int `json:"flags_updated"`
	// Filtered counts messages the filters (size, date) left out.
	Filtered int   `json:"filtered"`
	Bytes    int64 `json:"bytes"`
}

func (c *Counts) add(o Counts) {
	c.Copied += o.Copied
	c.DuplicatesSkipped += o.DuplicatesSkipped
	c.AlreadyPresent += o.AlreadyPresent
	c.SameMessageID += o.SameMessageID
	c.Recopied += o.Recopied
	c.Failed += o.Failed
	c.FlagsUpdated += o.FlagsUpdated
	c.Filtered += o.Filtered
	c.Bytes += o.Bytes
}

// total sets the run's counts from its folders'.
func (s *Summary) total() {
	s.Counts = Counts{}
	for _, f := range s.Folders {
		s.Counts.add(f.Counts)
	}
}

// FolderSummary is the outcome for one source folder.
type FolderSummary struct {
	Name        string `json:"name"`
	Destination string `json:"destination"`
	// MappedBy says why Destination differs from Name ("special-use \Sent").
	MappedBy string `json:"mapped_by,omitempty"`
	Messages int    `json:"messages"`
	Counts
	Error string `json:"error,omitempty"`
}

// ErrorEntry names one failure: a message (Message empty: the whole folder).
type ErrorEntry struct {
	Folder  string `json:"folder"`
	Message string `json:"message,omitempty"`
	Error   string `json:"error"`
}

// failedFolders counts the folders that failed as a whole.
func (s *Summary) failedFolders() int {
	n := 0
	for _, f := range s.Folders {
		if f.Error != "" {
			n++
		}
	}
	return n
}

// countFailedFolders sets FailedFolders from the folders' errors.
func (s *Summary) countFailedFolders() { s.FailedFolders = s.failedFolders() }

// Incomplete reports whether anything selected did not reach the
// destination.
func (s *Summary) Incomplete() bool { return s.Failed > 0 || s.failedFolders() > 0 }
